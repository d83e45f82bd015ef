// The JS-facing surface of the PostgreSQL redo code (grows with native/pg/): so far the
// validation of a stored record. Argument checks as in addon.cc; every
// body runs inside PgGuard so no C++ exception reaches Node.
#include <napi.h>

#include <string>

#include "../errors.h"
#include "pg_addon.h"
#include "redo_record.h"

namespace strata {
namespace pg {
namespace {

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
Napi::Value PgGuard(Napi::Env env, Body&& body) {
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

struct Bytes {
  uint8_t* data;
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

// pgCheckRedoRecord(rec): null when well formed, else what is wrong.
Napi::Value CheckRedoRecordJs(const Napi::CallbackInfo& info) {
  return PgGuard(info.Env(), [&]() -> Napi::Value {
    const Bytes rec = ArgBytes(info, 0, "rec");
    const char* err = CheckRedoRecord(rec.data, rec.len);
    return err == nullptr ? info.Env().Null() : Napi::String::New(info.Env(), err);
  });
}

}  // namespace

void InitPg(Napi::Env env, Napi::Object exports) {
  exports.Set("pgCheckRedoRecord", Napi::Function::New<CheckRedoRecordJs>(env, "pgCheckRedoRecord"));
}

}  // namespace pg
}  // namespace strata
