// Machine floors for bench/ (see bench_floors.h). Each floor does the least work its engine
// counterpart could possibly do, so "engine ÷ floor" says how much of the machine the engine uses:
//   * memcpy of 8 KB pages from a working set into distinct destinations (a batched read can at
//     best copy each page once into the caller's buffer);
//   * one N-API call that unwraps an id and a buffer, checks them as addon.cc does, and copies one
//     page (a single-page read can at best do this);
//   * decompression of stored blob payloads with the core's own Decompressor (a read of a
//     compressed page can at best do this).
// Timed loops run entirely in C++ with std::chrono::steady_clock; the caller repeats runs and
// takes medians. Nothing here shares state with the engine's Core.
#include "bench_floors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "../codec.h"
#include "../format.h"

namespace strata {
namespace {

constexpr size_t kFloorPageSize = kPageSize;
constexpr double kMaxPages = 1 << 22;     // 32 GiB of pages: far above anything the bench asks for
constexpr uint32_t kMaxRingPages = 4096;  // 32 MiB of destinations
// Random page indices are drawn once and cycled, so the RNG stays out of the timed loop;
// 16 Ki indices (64 KiB) stay in L1/L2 and are not what the loop measures.
constexpr size_t kIndexCount = 16384;

// A compiler barrier: stops the optimizer from merging or dropping copies whose results are
// never read, without emitting any instruction.
inline void ClobberMemory() { asm volatile("" ::: "memory"); }

uint64_t XorShift64(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

// 4 KiB-aligned, zero-initialized byte block (page-aligned like the engine's slot pool is in
// practice), freed with the matching aligned delete.
struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t{4096}); }
};
using AlignedBytes = std::unique_ptr<uint8_t, AlignedFree>;

AlignedBytes AllocAligned(size_t bytes) {
  auto* p = static_cast<uint8_t*>(::operator new(bytes, std::align_val_t{4096}));
  std::memset(p, 0, bytes);  // fault every page in now, not inside a timed loop
  return AlignedBytes(p);
}

// Same contract as addon.cc's Guard: no C++ exception leaves an exported function.
template <typename Body>
Napi::Value Guarded(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, "benchFloors: out of memory").ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("benchFloors: ") + e.what()).ThrowAsJavaScriptException();
  } catch (...) {
    Napi::Error::New(env, "benchFloors: internal error").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

[[noreturn]] void Bad(Napi::Env env, const std::string& what) { throw Napi::TypeError::New(env, "benchFloors: " + what); }

// Checked like addon.cc's ArgInteger so the N-API floor pays the same per-call argument cost.
double ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, double max) {
  if (i >= info.Length() || !info[i].IsNumber()) Bad(info.Env(), std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0 && v <= max) || std::floor(v) != v) Bad(info.Env(), std::string(name) + " is out of range");
  return v;
}

Napi::Uint8Array ArgU8(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Bad(info.Env(), std::string(name) + " must be a Uint8Array or Buffer");
  }
  return info[i].As<Napi::Uint8Array>();
}

Napi::Uint32Array ArgU32Array(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    Bad(info.Env(), std::string(name) + " must be a Uint32Array");
  }
  return info[i].As<Napi::Uint32Array>();
}

double ElapsedNs(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
}

class PageStore : public Napi::ObjectWrap<PageStore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PageStore",
                       {
                           InstanceMethod<&PageStore::CopyInto>("copyInto"),
                           InstanceMethod<&PageStore::CopyBatch>("copyBatch"),
                           InstanceMethod<&PageStore::MemcpyRun>("memcpyRun"),
                           InstanceAccessor<&PageStore::Pages>("pages"),
                       });
  }

  // new PageStore(pages, seed): pages × 8 KB of xorshift bytes (incompressible, all distinct).
  explicit PageStore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PageStore>(info) {
    try {
      pages_ = static_cast<size_t>(ArgInt(info, 0, "pages", kMaxPages));
      if (pages_ == 0) Bad(info.Env(), "pages must be at least 1");
      uint64_t s = static_cast<uint64_t>(ArgInt(info, 1, "seed", 4294967295.0)) | 1;
      data_ = AllocAligned(pages_ * kFloorPageSize);
      auto* words = reinterpret_cast<uint64_t*>(data_.get());
      const size_t n = pages_ * kFloorPageSize / sizeof(uint64_t);
      for (size_t i = 0; i < n; ++i) words[i] = XorShift64(s);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw Napi::Error::New(info.Env(), "benchFloors: out of memory");
    } catch (const std::exception& e) {
      throw Napi::Error::New(info.Env(), std::string("benchFloors: ") + e.what());
    }
  }

 private:
  const uint8_t* Page(size_t id) const { return data_.get() + id * kFloorPageSize; }

  Napi::Value Pages(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(pages_)); }

  // copyInto(id, buf): the whole cost of a minimal "give me cached page id" call.
  Napi::Value CopyInto(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      const size_t id = static_cast<size_t>(ArgInt(info, 0, "id", static_cast<double>(pages_ - 1)));
      Napi::Uint8Array buf = ArgU8(info, 1, "buf");
      if (buf.ElementLength() < kFloorPageSize) Bad(info.Env(), "buf must hold 8192 bytes");
      std::memcpy(buf.Data(), Page(id), kFloorPageSize);
      return info.Env().Undefined();
    });
  }

  // copyBatch(ids, out): one call, ids.length pages into consecutive 8 KB slices of `out`.
  Napi::Value CopyBatch(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      Napi::Uint32Array ids = ArgU32Array(info, 0, "ids");
      Napi::Uint8Array out = ArgU8(info, 1, "out");
      const size_t n = ids.ElementLength();
      if (out.ElementLength() < n * kFloorPageSize) Bad(info.Env(), "out is too small for the batch");
      const uint32_t* id = ids.Data();
      for (size_t i = 0; i < n; ++i) {
        if (id[i] >= pages_) Bad(info.Env(), "id out of range");
      }
      uint8_t* dst = out.Data();
      for (size_t i = 0; i < n; ++i) std::memcpy(dst + i * kFloorPageSize, Page(id[i]), kFloorPageSize);
      return info.Env().Undefined();
    });
  }

  // memcpyRun(copies, ringPages, seed) -> ns: random source pages copied into a ring of
  // `ringPages` distinct destination pages, as a batched read fills distinct output slices.
  Napi::Value MemcpyRun(const Napi::CallbackInfo& info) {
    return Guarded(info.Env(), [&]() -> Napi::Value {
      const uint64_t copies = static_cast<uint64_t>(ArgInt(info, 0, "copies", 1e10));
      const uint32_t ring = static_cast<uint32_t>(ArgInt(info, 1, "ringPages", kMaxRingPages));
      if (ring == 0) Bad(info.Env(), "ringPages must be at least 1");
      uint64_t s = static_cast<uint64_t>(ArgInt(info, 2, "seed", 4294967295.0)) | 1;
      std::vector<uint32_t> idx(kIndexCount);
      for (auto& v : idx) v = static_cast<uint32_t>(XorShift64(s) % pages_);
      AlignedBytes dst = AllocAligned(size_t{ring} * kFloorPageSize);
      const uint8_t* src = data_.get();
      uint8_t* out = dst.get();
      const auto start = std::chrono::steady_clock::now();
      uint32_t slot = 0;
      for (uint64_t i = 0; i < copies; ++i) {
        std::memcpy(out + size_t{slot} * kFloorPageSize, src + size_t{idx[i % kIndexCount]} * kFloorPageSize,
                    kFloorPageSize);
        ClobberMemory();
        if (++slot == ring) slot = 0;
      }
      const double ns = ElapsedNs(start);
      sink_ ^= out[kFloorPageSize - 1];  // the copies are observable, so they cannot be dropped
      return Napi::Number::New(info.Env(), ns);
    });
  }

  size_t pages_ = 0;
  AlignedBytes data_;
  uint8_t sink_ = 0;
};

// decompressRun(codec, payloads, offsets, rawLen, iterations) -> ns
// payloads: blob payloads back to back (the bytes after a blob's 8-byte header, exactly what
// ReadBlob hands the Decompressor); offsets: n + 1 boundaries. Every payload is decoded once
// and checked before timing, so the timed loop measures clean decompression only.
Napi::Value DecompressRun(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    const auto codec = static_cast<uint8_t>(ArgInt(info, 0, "codec", kCodecMax));
    if (codec == kCodecNone) Bad(info.Env(), "codec must be 1 (lz4) or 2 (zstd)");
    Napi::Uint8Array payloads = ArgU8(info, 1, "payloads");
    Napi::Uint32Array offsets = ArgU32Array(info, 2, "offsets");
    const size_t raw_len = static_cast<size_t>(ArgInt(info, 3, "rawLen", kMaxRecordSize));
    if (raw_len == 0) Bad(info.Env(), "rawLen must be at least 1");
    const uint64_t iterations = static_cast<uint64_t>(ArgInt(info, 4, "iterations", 1e10));
    const size_t n = offsets.ElementLength();
    if (n < 2) Bad(info.Env(), "offsets must hold at least two boundaries");
    const uint32_t* off = offsets.Data();
    for (size_t i = 0; i + 1 < n; ++i) {
      if (off[i] > off[i + 1]) Bad(info.Env(), "offsets must not decrease");
    }
    if (off[n - 1] > payloads.ElementLength()) Bad(info.Env(), "offsets run past the payloads");
    // Own copy: the timed loop must not depend on where V8 keeps the input.
    const std::vector<uint8_t> in(payloads.Data(), payloads.Data() + payloads.ElementLength());
    std::vector<uint8_t> out(raw_len);
    Decompressor d;
    const size_t blobs = n - 1;
    for (size_t i = 0; i < blobs; ++i) {
      if (const char* err = d.Decompress(codec, in.data() + off[i], off[i + 1] - off[i], out.data(), raw_len)) {
        Bad(info.Env(), std::string("payload ") + std::to_string(i) + ": " + err);
      }
    }
    const auto start = std::chrono::steady_clock::now();
    size_t b = 0;
    uint8_t sink = 0;
    for (uint64_t i = 0; i < iterations; ++i) {
      // Already validated above; a failure here would be a decoder bug, so it is reported.
      if (d.Decompress(codec, in.data() + off[b], off[b + 1] - off[b], out.data(), raw_len) != nullptr) {
        Bad(info.Env(), "decompression failed inside the timed loop");
      }
      sink ^= out[raw_len - 1];
      if (++b == blobs) b = 0;
    }
    const double ns = ElapsedNs(start);
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("ns", Napi::Number::New(info.Env(), ns));
    result.Set("sink", Napi::Number::New(info.Env(), sink));  // keeps the decoded bytes observable
    return result;
  });
}

// dropFileCache(path): asks the kernel to drop the file's clean pages from the OS page cache
// (posix_fadvise DONTNEED), so the next reads of it come from the device — how the event-loop
// workload makes its reads cold without dropping every cache on the machine. Returns whether the
// advice was accepted (it is advice: the kernel may keep pages that are mapped or dirty).
Napi::Value DropFileCache(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) Bad(info.Env(), "path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    const int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    return Napi::Boolean::New(info.Env(), rc == 0);
  });
}

}  // namespace

Napi::Object BenchFloors(Napi::Env env) {
  Napi::Object floors = Napi::Object::New(env);
  floors.Set("PageStore", PageStore::Define(env));
  floors.Set("decompressRun", Napi::Function::New<DecompressRun>(env, "decompressRun"));
  floors.Set("dropFileCache", Napi::Function::New<DropFileCache>(env, "dropFileCache"));
  return floors;
}

}  // namespace strata

// A module of its own (build/Release/strata_bench.node, binding.gyp's bench target): the floors
// are not part of the production addon.
static Napi::Object InitBenchFloors(Napi::Env env, Napi::Object exports) {
  exports.Set("benchFloors", strata::BenchFloors(env));
  return exports;
}

NODE_API_MODULE(strata_bench, InitBenchFloors)
