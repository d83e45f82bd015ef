// Every failure inside the core is a StrataError carrying one of the stable codes of
// lib/errors.ts's ERROR_CODES (test/errors.test.ts checks these names against it); addon.cc turns
// it into a JS Error with a string `code` property.
#ifndef STRATA_ERRORS_H_
#define STRATA_ERRORS_H_

#include <stdexcept>
#include <string>

namespace strata {

enum class ErrorCode {
  kCorruptLayer,
  kIoError,
  kBadArgument,
  kCacheFull,
  kClosed,
  kWalCorrupt,
  kWalUnsupported,
  kRedoFailed,
};

inline const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kCorruptLayer: return "CORRUPT_LAYER";
    case ErrorCode::kIoError: return "IO_ERROR";
    case ErrorCode::kBadArgument: return "BAD_ARGUMENT";
    case ErrorCode::kCacheFull: return "CACHE_FULL";
    case ErrorCode::kClosed: return "CLOSED";
    case ErrorCode::kWalCorrupt: return "WAL_CORRUPT";
    case ErrorCode::kWalUnsupported: return "WAL_UNSUPPORTED";
    case ErrorCode::kRedoFailed: return "REDO_FAILED";
  }
  return "IO_ERROR";
}

class StrataError : public std::runtime_error {
 public:
  StrataError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void Fail(ErrorCode code, const std::string& message) { throw StrataError(code, message); }
[[noreturn]] inline void BadArgument(const std::string& message) { Fail(ErrorCode::kBadArgument, message); }

}  // namespace strata

#endif  // STRATA_ERRORS_H_
