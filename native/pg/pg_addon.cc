// The JS-facing surface of the PostgreSQL parts of the core (native/pg/): the WAL decoder
// (PgWalDecoder: one boundary crossing per feed() and per decode() batch), the validation of a
// stored record, redo of one stored record (pgRedoRecord, for tests and benchmarks: the read path
// redoes through the core), the page checksum, record names, and test hooks (bufpage operations,
// CRC-32C, pglz). Conventions are addon.cc's
// (js_boundary.h): arguments checked here whatever the TS wrapper checked, every body inside Guard.
#include "pg_addon.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "../errors.h"
#include "../js_boundary.h"
#include "bufpage.h"
#include "checksum.h"
#include "crc32c.h"
#include "pg_format.h"
#include "pglz.h"
#include "redo_record.h"
#include "rmgr.h"
#include "xlogreader.h"

namespace strata {
namespace pg {
namespace {

using js::ArgInteger;
using js::ArgU32;
using js::ArgU64;
using js::ArgUint8Array;
using js::Guard;
using js::JsBytes;
using js::RethrowFromConstructor;

constexpr uint32_t kMaxPglzRawLen = 1u << 30;  // far above any page; bounds the test hook's allocation

uint8_t* ArgPage(const Napi::CallbackInfo& info, size_t i) {
  const JsBytes b = ArgUint8Array(info, i, "page");
  if (b.len != kBlckSz) BadArgument("page must be 8192 bytes");
  return b.data;
}

// pgRedoRecord(rec, page): redoes the stored record on the page in place.
Napi::Value RedoRecordJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const JsBytes rec = ArgUint8Array(info, 0, "rec");
    uint8_t* page = ArgPage(info, 1);
    RedoRecord(rec.data, rec.len, page);
    return info.Env().Undefined();
  });
}

// pgChecksumPage(page, blkno).
Napi::Value ChecksumPageJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const uint8_t* page = ArgPage(info, 0);
    const uint32_t blkno = ArgU32(info, 1, "blkno");
    return Napi::Number::New(info.Env(), PgChecksumPage(page, blkno));
  });
}

// pgRmgrInfoName(rmid, info): "rmgr/INFO" as pg_waldump prints it.
Napi::Value RmgrInfoNameJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const auto rmid = static_cast<uint8_t>(ArgInteger(info, 0, "rmid", 255));
    const auto xl_info = static_cast<uint8_t>(ArgInteger(info, 1, "info", 255));
    return Napi::String::New(info.Env(), RmgrInfoName(rmid, xl_info));
  });
}

// pgCheckRedoRecord(rec): null when well formed, else what is wrong.
Napi::Value CheckRedoRecordJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const JsBytes rec = ArgUint8Array(info, 0, "rec");
    const char* err = CheckRedoRecord(rec.data, rec.len);
    return err == nullptr ? info.Env().Null() : Napi::String::New(info.Env(), err);
  });
}

// pgPageOp(op, page, a, b, bytes): one bufpage.c function on the page, for the differential test
// (op numbers in lib/core/ts/pg/bufpage.ts, PAGE_OP). Returns the function's numeric result or 0.
Napi::Value PageOpJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const int op = static_cast<int>(ArgInteger(info, 0, "op", 100));
    uint8_t* page = ArgPage(info, 1);
    const int a = static_cast<int>(ArgInteger(info, 2, "a", 65535));
    const int b = static_cast<int>(ArgInteger(info, 3, "b", 65535));
    const JsBytes bytes = ArgUint8Array(info, 4, "bytes");
    double result = 0;
    switch (op) {
      case 0: PageInit(page, static_cast<size_t>(a)); break;
      case 1: result = PageAddItemExtended(page, bytes.data, bytes.len, a, b); break;
      case 2: PageRepairFragmentation(page); break;
      case 3: PageTruncateLinePointerArray(page); break;
      case 4: PageIndexTupleDelete(page, a); break;
      case 5: {
        std::vector<uint16_t> items(bytes.len / 2);
        for (size_t i = 0; i < items.size(); ++i) items[i] = LoadLe16(bytes.data + 2 * i);
        PageIndexMultiDelete(page, items.data(), static_cast<int>(items.size()));
        break;
      }
      case 6: PageIndexTupleDeleteNoCompact(page, a); break;
      case 7: result = PageIndexTupleOverwrite(page, a, bytes.data, bytes.len) ? 1 : 0; break;
      case 8: result = static_cast<double>(PageGetHeapFreeSpace(page)); break;
      case 9: result = static_cast<double>(PageGetFreeSpace(page)); break;
      case 10: result = static_cast<double>(PageGetExactFreeSpace(page)); break;
      case 11:
        if (bytes.len != kBlckSz) BadArgument("bytes must be 8192 bytes for PageGetTempPageCopySpecial");
        PageGetTempPageCopySpecial(page, bytes.data);
        break;
      default: BadArgument("unknown page op");
    }
    return Napi::Number::New(info.Env(), result);
  });
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
    } catch (...) {
      RethrowFromConstructor(info.Env());
    }
  }

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const JsBytes bytes = ArgUint8Array(info, 0, "bytes");
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
    const JsBytes data = ArgUint8Array(info, 0, "data");
    const uint32_t start = info.Length() > 1 ? ArgU32(info, 1, "value") : 0;
    return Napi::Number::New(info.Env(), Crc32c(data.data, data.len, start));
  });
}

// pgCrc32cTables(data) -> number: the table path whatever the CPU, for tests against the instruction
Napi::Value Crc32cTablesJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const JsBytes data = ArgUint8Array(info, 0, "data");
    return Napi::Number::New(info.Env(), Crc32cFinish(Crc32cUpdateTables(kCrc32cInit, data.data, data.len)));
  });
}

// pgPglzDecompress(src, rawLen) -> Buffer; BAD_ARGUMENT naming the fault on malformed input
Napi::Value PglzDecompressJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const JsBytes src = ArgUint8Array(info, 0, "src");
    const uint32_t raw_len = ArgU32(info, 1, "rawLen");
    if (raw_len > kMaxPglzRawLen) BadArgument("rawLen is too large");
    std::vector<uint8_t> out(raw_len);
    if (const char* err = PglzDecompress(src.data, src.len, out.data(), out.size())) BadArgument(err);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), out.data(), out.size());
  });
}

}  // namespace

void InitPg(Napi::Env env, Napi::Object exports) {
  exports.Set("pgRedoRecord", Napi::Function::New<RedoRecordJs>(env, "pgRedoRecord"));
  exports.Set("pgChecksumPage", Napi::Function::New<ChecksumPageJs>(env, "pgChecksumPage"));
  exports.Set("pgRmgrInfoName", Napi::Function::New<RmgrInfoNameJs>(env, "pgRmgrInfoName"));
  exports.Set("pgCheckRedoRecord", Napi::Function::New<CheckRedoRecordJs>(env, "pgCheckRedoRecord"));
  exports.Set("pgPageOp", Napi::Function::New<PageOpJs>(env, "pgPageOp"));
  exports.Set("PgWalDecoder", JsWalDecoder::Define(env));
  exports.Set("pgCrc32c", Napi::Function::New<Crc32cJs>(env, "pgCrc32c"));
  exports.Set("pgCrc32cTables", Napi::Function::New<Crc32cTablesJs>(env, "pgCrc32cTables"));
  exports.Set("pgCrc32cHardware", Napi::Boolean::New(env, Crc32cHasHardware()));
  exports.Set("pgPglzDecompress", Napi::Function::New<PglzDecompressJs>(env, "pgPglzDecompress"));
}

}  // namespace pg
}  // namespace strata
