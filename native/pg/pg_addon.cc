// JS-facing surface of the PostgreSQL WAL decoder: the PgWalDecoder class (one boundary crossing
// per feed() and per decode() batch) and test hooks for CRC-32C and pglz. The conventions are
// addon.cc's: every argument is checked here whatever the TS wrapper checked, every body runs
// inside Guard() so no C++ exception reaches Node, and failures become coded JS errors.
#include "pg_addon.h"

#include <cmath>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "../errors.h"
#include "crc32c.h"
#include "pglz.h"
#include "xlogreader.h"

namespace strata {
namespace pg {
namespace {

constexpr double kMaxU32 = 4294967295.0;
constexpr uint32_t kMaxPglzRawLen = 1u << 30;  // far above any page; bounds the test hook's allocation

// A JS Error with string `code` and "CODE: " before the message, as lib/errors.ts expects.
void ThrowCoded(napi_env env, const char* code, const std::string& message) {
  const std::string text = std::string(code) + ": " + message;
  napi_value js_code, js_msg, error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code) != napi_ok ||
      napi_create_string_utf8(env, text.c_str(), text.size(), &js_msg) != napi_ok ||
      napi_create_error(env, js_code, js_msg, &error) != napi_ok) {
    napi_throw_error(env, code, text.c_str());
    return;
  }
  napi_throw(env, error);
}

template <typename Body>
Napi::Value Guard(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const StrataError& e) {
    ThrowCoded(env, ErrorCodeName(e.code()), e.what());
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const std::bad_alloc&) {
    ThrowCoded(env, "IO_ERROR", "out of memory");
  } catch (const std::exception& e) {
    ThrowCoded(env, "IO_ERROR", std::string("internal error: ") + e.what());
  } catch (...) {
    ThrowCoded(env, "IO_ERROR", "internal error");
  }
  return env.Undefined();
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, std::string(code) + ": " + message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) BadArgument(std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= kMaxU32) || std::floor(v) != v) BadArgument(std::string(name) + " must be an integer in [0, 2^32)");
  return static_cast<uint32_t>(v);
}

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBigInt()) BadArgument(std::string(name) + " must be a bigint");
  bool lossless = false;
  const uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) BadArgument(std::string(name) + " must be in [0, 2^64)");
  return v;
}

struct Bytes {
  const uint8_t* data;
  size_t len;
};

Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    BadArgument(std::string(name) + " must be a Uint8Array or Buffer");
  }
  auto arr = info[i].As<Napi::Uint8Array>();
  return Bytes{arr.Data(), arr.ElementLength()};
}

// new PgWalDecoder(startLsn: bigint, endLsn: bigint (0n: none), systemId: bigint (0n: from the
// WAL), timeline: number (0: any)); feed(bytes); finish(); decode(maxRecords) →
// { entries: Buffer, count, nextLsn: bigint, state: 0 full | 1 need-more | 2 end }.
class JsWalDecoder : public Napi::ObjectWrap<JsWalDecoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PgWalDecoder",
                       {
                           InstanceMethod<&JsWalDecoder::Feed>("feed"),
                           InstanceMethod<&JsWalDecoder::Finish>("finish"),
                           InstanceMethod<&JsWalDecoder::Decode>("decode"),
                       });
  }

  explicit JsWalDecoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsWalDecoder>(info) {
    try {
      DecoderOptions options;
      options.start_lsn = ArgU64(info, 0, "startLsn");
      options.end_lsn = ArgU64(info, 1, "endLsn");
      options.system_id = ArgU64(info, 2, "systemId");
      options.timeline = ArgU32(info, 3, "timeline");
      decoder_ = std::make_unique<WalDecoder>(options);
    } catch (const StrataError& e) {
      throw CodedError(info.Env(), ErrorCodeName(e.code()), e.what());
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw CodedError(info.Env(), "IO_ERROR", "out of memory");
    } catch (const std::exception& e) {
      throw CodedError(info.Env(), "IO_ERROR", std::string("internal error: ") + e.what());
    }
  }

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const Bytes bytes = ArgBytes(info, 0, "bytes");
      decoder_->Feed(bytes.data, bytes.len);
      return info.Env().Undefined();
    });
  }

  Napi::Value Finish(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      decoder_->Finish();
      return info.Env().Undefined();
    });
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const uint32_t max_records = ArgU32(info, 0, "maxRecords");
      out_.clear();
      const DecodeResult r = decoder_->Decode(max_records, &out_);
      Napi::Env env = info.Env();
      Napi::Object result = Napi::Object::New(env);
      result.Set("entries", Napi::Buffer<uint8_t>::Copy(env, out_.data(), out_.size()));
      result.Set("count", Napi::Number::New(env, r.count));
      result.Set("nextLsn", Napi::BigInt::New(env, r.next_lsn));
      result.Set("state", Napi::Number::New(env, static_cast<double>(r.state)));
      return result;
    });
  }

  std::unique_ptr<WalDecoder> decoder_;
  std::vector<uint8_t> out_;  // reused across batches
};

// pgCrc32c(data[, value]) -> number (CRC-32C, zlib-style continuation)
Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const Bytes data = ArgBytes(info, 0, "data");
    const uint32_t start = info.Length() > 1 ? ArgU32(info, 1, "value") : 0;
    return Napi::Number::New(info.Env(), Crc32c(data.data, data.len, start));
  });
}

// pgCrc32cTables(data) -> number: the table path whatever the CPU, for tests against the instruction
Napi::Value Crc32cTablesJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const Bytes data = ArgBytes(info, 0, "data");
    return Napi::Number::New(info.Env(), Crc32cFinish(Crc32cUpdateTables(kCrc32cInit, data.data, data.len)));
  });
}

// pgPglzDecompress(src, rawLen) -> Buffer; BAD_ARGUMENT naming the fault on malformed input
Napi::Value PglzDecompressJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const Bytes src = ArgBytes(info, 0, "src");
    const uint32_t raw_len = ArgU32(info, 1, "rawLen");
    if (raw_len > kMaxPglzRawLen) BadArgument("rawLen is too large");
    std::vector<uint8_t> out(raw_len);
    if (const char* err = PglzDecompress(src.data, src.len, out.data(), out.size())) BadArgument(err);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), out.data(), out.size());
  });
}

}  // namespace

void InitPg(Napi::Env env, Napi::Object exports) {
  exports.Set("PgWalDecoder", JsWalDecoder::Define(env));
  exports.Set("pgCrc32c", Napi::Function::New<Crc32cJs>(env, "pgCrc32c"));
  exports.Set("pgCrc32cTables", Napi::Function::New<Crc32cTablesJs>(env, "pgCrc32cTables"));
  exports.Set("pgCrc32cHardware", Napi::Boolean::New(env, Crc32cHasHardware()));
  exports.Set("pgPglzDecompress", Napi::Function::New<PglzDecompressJs>(env, "pgPglzDecompress"));
}

}  // namespace pg
}  // namespace strata
