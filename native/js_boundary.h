// What every N-API entry point shares (addon.cc, pg/pg_addon.cc): coded errors, the Guard every
// body runs in so that no C++ exception reaches Node, and argument checks — the binding is the
// trust boundary, whatever the TS wrapper checked.
#ifndef STRATA_JS_BOUNDARY_H_
#define STRATA_JS_BOUNDARY_H_

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "errors.h"

namespace strata {
namespace js {

constexpr double kMaxU32 = 4294967295.0;

// Throws a JS Error whose `code` is one of lib/errors.ts's codes, with "CODE: " in the message
// like StrataError's; uses the C API so that throwing cannot itself throw.
inline void ThrowCoded(napi_env env, const char* code, const std::string& message) {
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

// Runs an entry point's body; any C++ exception becomes a pending coded JS exception.
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

// Constructors cannot leave a pending exception and return; node-addon-api turns a thrown
// Napi::Error into a JS exception instead.
inline Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, std::string(code) + ": " + message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Call from inside a catch block of a constructor: rethrows the current exception as a coded Napi::Error.
[[noreturn]] inline void RethrowFromConstructor(Napi::Env env) {
  try {
    throw;
  } catch (const StrataError& e) {
    throw CodedError(env, ErrorCodeName(e.code()), e.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw CodedError(env, "IO_ERROR", "out of memory");
  } catch (const std::exception& e) {
    throw CodedError(env, "IO_ERROR", std::string("internal error: ") + e.what());
  } catch (...) {
    throw CodedError(env, "IO_ERROR", "internal error");
  }
}

// A Uint8Array argument as (data, length).
struct JsBytes {
  uint8_t* data;
  size_t len;
};

inline JsBytes ArgUint8Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    BadArgument(std::string(name) + " must be a Uint8Array or Buffer");
  }
  auto arr = info[i].As<Napi::Uint8Array>();
  return JsBytes{arr.Data(), arr.ElementLength()};
}

inline double ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* name, double max) {
  if (i >= info.Length() || !info[i].IsNumber()) BadArgument(std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= max) || std::floor(v) != v) {
    BadArgument(std::string(name) + " must be an integer in [0, " + std::to_string(static_cast<uint64_t>(max)) + "]");
  }
  return v;
}

inline uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return static_cast<uint32_t>(ArgInteger(info, i, name, kMaxU32));
}

// A bigint argument in [0, 2^64), e.g. an LSN.
inline uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBigInt()) BadArgument(std::string(name) + " must be a bigint");
  bool lossless = false;
  const uint64_t v = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) BadArgument(std::string(name) + " must be in [0, 2^64)");
  return v;
}

}  // namespace js
}  // namespace strata

#endif  // STRATA_JS_BOUNDARY_H_
