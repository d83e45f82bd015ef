// The JS-facing surface of the PostgreSQL redo code (grows with native/pg/): the validation of a
// stored record and a bufpage test hook. Argument checks as in addon.cc; every
// body runs inside PgGuard so no C++ exception reaches Node.
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "../errors.h"
#include "bufpage.h"
#include "pg_addon.h"
#include "pg_format.h"
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
  } catch (const PageError& e) {
    ThrowCoded(env, "REDO_FAILED", e.what());
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

uint8_t* ArgPage(const Napi::CallbackInfo& info, size_t i) {
  const Bytes b = ArgBytes(info, i, "page");
  if (b.len != kBlckSz) BadArgument("page must be 8192 bytes");
  return b.data;
}

double ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* name, double max) {
  if (i >= info.Length() || !info[i].IsNumber()) BadArgument(std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= max) || std::floor(v) != v) BadArgument(std::string(name) + " must be an integer in range");
  return v;
}

// pgCheckRedoRecord(rec): null when well formed, else what is wrong.
Napi::Value CheckRedoRecordJs(const Napi::CallbackInfo& info) {
  return PgGuard(info.Env(), [&]() -> Napi::Value {
    const Bytes rec = ArgBytes(info, 0, "rec");
    const char* err = CheckRedoRecord(rec.data, rec.len);
    return err == nullptr ? info.Env().Null() : Napi::String::New(info.Env(), err);
  });
}

// pgPageOp(op, page, a, b, bytes): one bufpage.c function on the page, for the differential test
// (op numbers in lib/core/ts/pg/bufpage.ts, PAGE_OP). Returns the function's numeric result or 0.
Napi::Value PageOpJs(const Napi::CallbackInfo& info) {
  return PgGuard(info.Env(), [&]() -> Napi::Value {
    const int op = static_cast<int>(ArgInteger(info, 0, "op", 100));
    uint8_t* page = ArgPage(info, 1);
    const int a = static_cast<int>(ArgInteger(info, 2, "a", 65535));
    const int b = static_cast<int>(ArgInteger(info, 3, "b", 65535));
    const Bytes bytes = ArgBytes(info, 4, "bytes");
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

}  // namespace

void InitPg(Napi::Env env, Napi::Object exports) {
  exports.Set("pgCheckRedoRecord", Napi::Function::New<CheckRedoRecordJs>(env, "pgCheckRedoRecord"));
  exports.Set("pgPageOp", Napi::Function::New<PageOpJs>(env, "pgPageOp"));
}

}  // namespace pg
}  // namespace strata
