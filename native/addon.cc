// Module init and the JS-facing surface: argument checking, error conversion and the two
// wrapped classes (Core, LayerWriter). Everything below the boundary lives in core.h & co.
// No C++ exception leaves an exported function: each body runs inside Guard().
#include <napi.h>

#include <cmath>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "background_thread.h"
#include "codec.h"
#include "compaction.h"
#include "core.h"
#include "crc32.h"
#include "delta_arena.h"
#include "errors.h"
#include "fault_injection.h"
#include "format.h"
#include "js_boundary.h"
#include "walredo.h"
#include "pg/pg_addon.h"

namespace strata {
namespace {

// Largest integer a double holds exactly (Number.MAX_SAFE_INTEGER).
constexpr double kMaxSafeInteger = 9007199254740991.0;

using js::CodedError;
using js::Guard;
using js::kMaxU32;
using js::RethrowFromConstructor;

// ---- argument checking: the binding is the trust boundary, whatever the TS wrapper checked ----

using js::ArgInteger;
using js::ArgU32;

uint64_t ArgLsn(const Napi::CallbackInfo& info, size_t i, const char* name) { return js::ArgU64(info, i, name); }

ByteSpan ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  const js::JsBytes b = js::ArgUint8Array(info, i, name);
  return ByteSpan{b.data, b.len};
}

CountSpan ArgCounts(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    BadArgument(std::string(name) + " must be a Uint32Array");
  }
  auto arr = info[i].As<Napi::Uint32Array>();
  return CountSpan{arr.Data(), arr.ElementLength()};
}

void ArgKey(const Napi::CallbackInfo& info, size_t i, const char* name, uint8_t* into) {
  const ByteSpan key = ArgBytes(info, i, name);
  if (key.len != kKeySize) BadArgument(std::string(name) + " must be " + std::to_string(kKeySize) + " bytes");
  std::copy(key.data, key.data + kKeySize, into);
}

// The arguments after the handle of layerKeys and layerKeysAsync: (keyStart, keyEnd, maxKeys?).
struct KeyListingArgs {
  uint8_t key_start[kKeySize];
  uint8_t key_end[kKeySize];
  uint32_t max_keys;
};

KeyListingArgs ArgKeyListing(const Napi::CallbackInfo& info) {
  KeyListingArgs args{};
  ArgKey(info, 1, "keyStart", args.key_start);
  ArgKey(info, 2, "keyEnd", args.key_end);
  args.max_keys = info.Length() >= 4 && !info[3].IsUndefined() ? ArgU32(info, 3, "maxKeys") : UINT32_MAX;
  return args;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsString()) BadArgument(std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> CopyToBuffer(Napi::Env env, const uint8_t* data, size_t len) {
  return Napi::Buffer<uint8_t>::Copy(env, data, len);
}

// ---- Core ----

class JsCore : public Napi::ObjectWrap<JsCore> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Core",
                       {
                           InstanceMethod<&JsCore::CacheCapacity>("cacheCapacity"),
                           InstanceMethod<&JsCore::CacheStats>("cacheStats"),
                           InstanceMethod<&JsCore::CacheLookup>("cacheLookup"),
                           InstanceMethod<&JsCore::CacheInsert>("cacheInsert"),
                           InstanceMethod<&JsCore::CachePin>("cachePin"),
                           InstanceMethod<&JsCore::CacheUnpin>("cacheUnpin"),
                           InstanceMethod<&JsCore::CacheContains>("cacheContains"),
                           InstanceMethod<&JsCore::OpenLayer>("openLayer"),
                           InstanceMethod<&JsCore::LayerSummaryOf>("layerSummary"),
                           InstanceMethod<&JsCore::LayerKeys>("layerKeys"),
                           InstanceMethod<&JsCore::LayerKeysAsyncJs>("layerKeysAsync"),
                           InstanceMethod<&JsCore::VerifyLayer>("verifyLayer"),
                           InstanceMethod<&JsCore::CloseLayer>("closeLayer"),
                           InstanceMethod<&JsCore::CreateLayerMap>("createLayerMap"),
                           InstanceMethod<&JsCore::SetLayerMap>("setLayerMap"),
                           InstanceMethod<&JsCore::DropLayerMap>("dropLayerMap"),
                           InstanceMethod<&JsCore::GetPagesJs>("getPages"),
                           InstanceMethod<&JsCore::GetPagesAsyncJs>("getPagesAsync"),
                           InstanceMethod<&JsCore::TryGetPagesCachedJs>("tryGetPagesCached"),
                           InstanceMethod<&JsCore::CompactDeltasJs>("compactDeltas"),
                           InstanceMethod<&JsCore::Close>("close"),
                       });
  }

  // new Core(pageCacheBytes, pageCachePolicy = 'clock', maxOpenLayerFiles)
  explicit JsCore(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsCore>(info) {
    try {
      if (info.Length() < 1 || !info[0].IsNumber()) BadArgument("pageCacheBytes must be a number");
      const double bytes = info[0].As<Napi::Number>().DoubleValue();
      if (!(bytes >= 0 && bytes <= kMaxSafeInteger)) BadArgument("pageCacheBytes must be a non-negative number");
      PageCachePolicy policy = PageCachePolicy::kClock;
      if (info.Length() >= 2 && !info[1].IsUndefined()) {
        if (!info[1].IsString()) BadArgument("pageCachePolicy must be one of clock, s3fifo, adaptive-s3fifo");
        policy = ParsePageCachePolicy(info[1].As<Napi::String>().Utf8Value());
      }
      double max_open = kDefaultMaxOpenLayerFiles;
      if (info.Length() >= 3 && !info[2].IsUndefined()) {
        if (!info[2].IsNumber()) BadArgument("maxOpenLayerFiles must be a number");
        max_open = info[2].As<Napi::Number>().DoubleValue();
        if (!(max_open >= 1 && max_open <= kMaxSafeInteger && max_open == static_cast<double>(static_cast<uint64_t>(max_open)))) {
          BadArgument("maxOpenLayerFiles must be a positive integer");
        }
      }
      core_ = std::make_unique<Core>(static_cast<uint64_t>(bytes), policy, static_cast<size_t>(max_open));  // PageCache rounds down to whole pages
    } catch (...) {
      RethrowFromConstructor(info.Env());
    }
  }

 private:
  Napi::Value CacheCapacity(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), core_->cache().capacity()); });
  }

  Napi::Value CacheStats(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const PageCacheStats s = core_->cache().Stats();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("hits", Napi::Number::New(info.Env(), static_cast<double>(s.hits)));
      o.Set("misses", Napi::Number::New(info.Env(), static_cast<double>(s.misses)));
      o.Set("evictions", Napi::Number::New(info.Env(), static_cast<double>(s.evictions)));
      o.Set("capacityPages", Napi::Number::New(info.Env(), s.capacity_pages));
      o.Set("usedPages", Napi::Number::New(info.Env(), s.used_pages));
      o.Set("policy", Napi::String::New(info.Env(), PageCachePolicyName(s.policy)));
      return o;
    });
  }

  // cacheLookup(fileId, blkno, into)
  Napi::Value CacheLookup(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const uint32_t file = ArgU32(info, 0, "fileId"), blk = ArgU32(info, 1, "blkno");
      const ByteSpan into = ArgBytes(info, 2, "into");
      if (into.len < kBlockSize) BadArgument("into must hold at least " + std::to_string(kBlockSize) + " bytes");
      return Napi::Boolean::New(info.Env(), core_->cache().Lookup(file, blk, into.data));
    });
  }

  // cacheInsert(fileId, blkno, data)
  Napi::Value CacheInsert(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const uint32_t file = ArgU32(info, 0, "fileId"), blk = ArgU32(info, 1, "blkno");
      const ByteSpan data = ArgBytes(info, 2, "data");
      if (data.len != kBlockSize) BadArgument("data must be " + std::to_string(kBlockSize) + " bytes");
      core_->cache().Insert(file, blk, data.data);
      return info.Env().Undefined();
    });
  }

  Napi::Value CachePin(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Boolean::New(info.Env(), core_->cache().Pin(ArgU32(info, 0, "fileId"), ArgU32(info, 1, "blkno")));
    });
  }

  Napi::Value CacheUnpin(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->cache().Unpin(ArgU32(info, 0, "fileId"), ArgU32(info, 1, "blkno"));
      return info.Env().Undefined();
    });
  }

  Napi::Value CacheContains(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Boolean::New(info.Env(), core_->cache().Contains(ArgU32(info, 0, "fileId"), ArgU32(info, 1, "blkno")));
    });
  }

  Napi::Value OpenLayer(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      return Napi::Number::New(info.Env(), core_->OpenLayer(ArgString(info, 0, "path")));
    });
  }

  Napi::Value LayerSummaryOf(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const LayerSummary& s = core_->GetLayer(ArgU32(info, 0, "handle")).summary();
      Napi::Env env = info.Env();
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", Napi::String::New(env, s.kind == kLayerKindImage ? "image" : "delta"));
      o.Set("codec", Napi::Number::New(env, s.codec));
      o.Set("keyStart", CopyToBuffer(env, s.key_start, kKeySize));
      o.Set("keyEnd", CopyToBuffer(env, s.key_end, kKeySize));
      o.Set("lsnStart", Napi::BigInt::New(env, s.lsn_start));
      o.Set("lsnEnd", Napi::BigInt::New(env, s.lsn_end));
      o.Set("entryCount", Napi::Number::New(env, static_cast<double>(s.entry_count)));
      o.Set("valueBytes", Napi::Number::New(env, static_cast<double>(s.value_bytes)));
      o.Set("indexHeight", Napi::Number::New(env, s.index_height));
      o.Set("indexLeafCount", Napi::Number::New(env, s.index_leaf_count));
      o.Set("indexBlkCount", Napi::Number::New(env, s.index_blk_count));
      o.Set("totalBlocks", Napi::Number::New(env, s.total_blocks));
      return o;
    });
  }

  Napi::Value LayerKeys(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const KeyListingArgs args = ArgKeyListing(info);
      const std::vector<uint8_t> keys = core_->GetLayer(ArgU32(info, 0, "handle")).Keys(args.key_start, args.key_end, args.max_keys);
      return CopyToBuffer(info.Env(), keys.data(), keys.size());
    });
  }

  Napi::Value VerifyLayer(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const uint64_t entries = core_->GetLayer(ArgU32(info, 0, "handle")).Verify();
      return Napi::Number::New(info.Env(), static_cast<double>(entries));
    });
  }

  Napi::Value CloseLayer(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->CloseLayer(ArgU32(info, 0, "handle"));
      return info.Env().Undefined();
    });
  }

  Napi::Value CreateLayerMap(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), core_->CreateLayerMap()); });
  }

  // setLayerMap(mapId, handles: Uint32Array)
  Napi::Value SetLayerMap(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      const uint32_t map_id = ArgU32(info, 0, "mapId");
      if (info.Length() < 2 || !info[1].IsTypedArray() ||
          info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
        BadArgument("handles must be a Uint32Array");
      }
      auto arr = info[1].As<Napi::Uint32Array>();
      const std::vector<uint32_t> handles(arr.Data(), arr.Data() + arr.ElementLength());
      core_->SetLayerMap(map_id, handles);
      return info.Env().Undefined();
    });
  }

  Napi::Value DropLayerMap(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->DropLayerMap(ArgU32(info, 0, "mapId"));
      return info.Env().Undefined();
    });
  }

  // getPages(plan, out, status, counts): on the JS thread.
  Napi::Value GetPagesJs(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->GetPages(ArgBytes(info, 0, "plan"), ArgBytes(info, 1, "out"), ArgBytes(info, 2, "status"),
                      ArgCounts(info, 3, "counts"));
      return info.Env().Undefined();
    });
  }

  // getPagesAsync(plan, out, status, counts, cachedInline, background?) -> Promise<void>.
  Napi::Value GetPagesAsyncJs(const Napi::CallbackInfo& info);

  // layerKeysAsync(handle, keyStart, keyEnd, maxKeys) -> Promise<Buffer>: layerKeys on the libuv pool.
  Napi::Value LayerKeysAsyncJs(const Napi::CallbackInfo& info);

  // compactDeltas(inputs, outputPrefix, outputSuffix, targetBytes, codec, lsnStart, lsnEnd)
  //   -> Promise<{ outputs: { path, keyStart, keyEnd, sizeBytes }[], bytesRead }>
  Napi::Value CompactDeltasJs(const Napi::CallbackInfo& info);

  // tryGetPagesCached(plan, out, status, counts[, outOffset]) -> boolean: the read from cached
  // blocks only, on this thread; with outOffset the pages go to out[outOffset, + 8192 × status
  // length) instead of filling out; false (out/status/counts then
  // undefined) when a block would need the disk. The offset spares the caller a view per read.
  Napi::Value TryGetPagesCachedJs(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      ByteSpan out = ArgBytes(info, 1, "out");
      const ByteSpan status = ArgBytes(info, 2, "status");
      if (info.Length() >= 5 && !info[4].IsUndefined()) {
        // The pages' bytes (one status byte per page) from the offset; the read checks the count.
        const size_t offset = ArgU32(info, 4, "outOffset");
        const size_t bytes = status.len * kPageSize;
        if (offset > out.len || out.len - offset < bytes) {
          BadArgument("outOffset " + std::to_string(offset) + " + " + std::to_string(bytes) + " page bytes is beyond out's " + std::to_string(out.len) + " bytes");
        }
        out = ByteSpan{out.data + offset, bytes};
      }
      const bool done = core_->TryGetPagesCached(ArgBytes(info, 0, "plan"), out, status, ArgCounts(info, 3, "counts"));
      return Napi::Boolean::New(info.Env(), done);
    });
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      core_->Close();
      return info.Env().Undefined();
    });
  }

  std::unique_ptr<Core> core_;
};

// One getPagesAsync call. The plan is copied (callers reuse their plan buffer as soon as the
// call returns); `out`, `status` and `counts` are written in place, kept alive by references
// until the promise settles. Execute() runs on a worker thread and touches no JS value; every
// C++ exception is caught there and turned into a coded rejection on the JS thread.
// The shared half of a promise-returning worker: Execute() runs Work() on a libuv thread, where
// every C++ exception becomes a coded rejection (no exception crosses into Node); OnOK() resolves
// with Result() on the JS thread or rejects with the code and message.
class CodedPromiseWorker : public Napi::AsyncWorker {
 public:
  // A background worker (flush, compaction, image creation) computes on its pool thread's
  // lower-priority companion (background_thread.h); a read a caller waits for stays on the pool.
  enum class Priority { kForeground, kBackground };

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      if (background_) {
        RunAtBackgroundPriority([this] { Work(); });
      } else {
        Work();
      }
    } catch (const StrataError& e) {
      Fail(ErrorCodeName(e.code()), e.what());
    } catch (const std::bad_alloc&) {
      Fail("IO_ERROR", "out of memory");
    } catch (const std::exception& e) {
      Fail("IO_ERROR", std::string("internal error: ") + e.what());
    } catch (...) {
      Fail("IO_ERROR", "internal error");
    }
  }

  void OnOK() override {
    Settled();
    if (error_code_ == nullptr) {
      deferred_.Resolve(Result());
    } else {
      deferred_.Reject(CodedError(Env(), error_code_, error_message_).Value());
    }
  }

 protected:
  CodedPromiseWorker(Napi::Env env, const char* name, Priority priority)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), background_(priority == Priority::kBackground) {}
  virtual void Work() = 0;                  // on the worker thread; touches no JS value
  virtual Napi::Value Result() { return Env().Undefined(); }
  virtual void Settled() {}                 // on the JS thread, before the promise settles

 private:
  void Fail(const char* code, std::string message) {
    error_code_ = code;
    error_message_ = std::move(message);
  }

  Napi::Promise::Deferred deferred_;
  const bool background_;
  const char* error_code_ = nullptr;  // a static string from ErrorCodeName or a literal
  std::string error_message_;
};

class GetPagesWorker : public CodedPromiseWorker {
 public:
  GetPagesWorker(Napi::Env env, ReadSnapshot snapshot, ByteSpan plan, const Napi::CallbackInfo& info, Priority priority)
      : CodedPromiseWorker(env, "strata:getPages", priority),
        snapshot_(std::move(snapshot)),
        plan_(plan.data, plan.data + plan.len),
        out_(ArgBytes(info, 1, "out")),
        status_(ArgBytes(info, 2, "status")),
        counts_(ArgCounts(info, 3, "counts")) {
    for (size_t i = 1; i <= 3; ++i) buffers_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }

 protected:
  void Work() override { snapshot_.Read(ByteSpan{plan_.data(), plan_.size()}, out_, status_, counts_); }

 private:
  ReadSnapshot snapshot_;
  std::vector<uint8_t> plan_;
  ByteSpan out_;
  ByteSpan status_;
  CountSpan counts_;
  std::vector<Napi::ObjectReference> buffers_;
};

// getPagesAsync(plan, out, status, counts, cachedInline, background?): with cachedInline, a read
// whose blocks are all cached finishes here (a thread round trip costs more than such a read) and
// the promise is already resolved; anything that would touch the disk goes to the thread pool.
// With background (image creation's reads), the read computes at the background priority.
Napi::Value JsCore::GetPagesAsyncJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const ByteSpan plan = ArgBytes(info, 0, "plan");
    if (info.Length() > 4 && info[4].ToBoolean().Value() &&
        core_->TryGetPagesCached(plan, ArgBytes(info, 1, "out"), ArgBytes(info, 2, "status"), ArgCounts(info, 3, "counts"))) {
      Napi::Promise::Deferred done = Napi::Promise::Deferred::New(info.Env());
      done.Resolve(info.Env().Undefined());
      return done.Promise();
    }
    const bool background = info.Length() > 5 && info[5].ToBoolean().Value();
    auto* worker = new GetPagesWorker(info.Env(), core_->Snapshot(), plan, info,
                                      background ? CodedPromiseWorker::Priority::kBackground : CodedPromiseWorker::Priority::kForeground);
    worker->Queue();  // the worker deletes itself after OnOK
    return worker->Promise();
  });
}

// One layerKeysAsync call: the B-tree walk on a libuv thread, over a snapshot that keeps the layer
// readable if it is closed meanwhile (its descriptor stays open: Core::CloseLayer).
class LayerKeysWorker : public CodedPromiseWorker {
 public:
  LayerKeysWorker(Napi::Env env, LayerKeysSnapshot snapshot, const KeyListingArgs& args)
      : CodedPromiseWorker(env, "strata:layerKeys", Priority::kBackground), snapshot_(std::move(snapshot)), args_(args) {}

 protected:
  void Work() override { keys_ = snapshot_.layer->Keys(args_.key_start, args_.key_end, args_.max_keys); }
  Napi::Value Result() override { return CopyToBuffer(Env(), keys_.data(), keys_.size()); }

 private:
  LayerKeysSnapshot snapshot_;
  const KeyListingArgs args_;
  std::vector<uint8_t> keys_;
};

Napi::Value JsCore::LayerKeysAsyncJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const KeyListingArgs args = ArgKeyListing(info);
    auto* worker = new LayerKeysWorker(info.Env(), core_->KeysSnapshot(ArgU32(info, 0, "handle")), args);
    worker->Queue();  // the worker deletes itself after OnOK
    return worker->Promise();
  });
}

// One compactDeltas call: the whole merge (reads, CRC checks, writes, fsyncs) on a libuv worker
// thread. It owns copies of its arguments and touches no core state, so the core may be used (or
// closed) meanwhile; the engine swaps the outputs in once the promise resolves.
class CompactDeltasWorker : public CodedPromiseWorker {
 public:
  CompactDeltasWorker(Napi::Env env, DeltaCompactionOptions opts)
      : CodedPromiseWorker(env, "strata:compactDeltas", Priority::kBackground), opts_(std::move(opts)) {}

 protected:
  void Work() override { result_ = CompactDeltaLayers(opts_); }

  Napi::Value Result() override {
    Napi::Env env = Env();
    Napi::Array outputs = Napi::Array::New(env, result_.outputs.size());
    for (size_t i = 0; i < result_.outputs.size(); ++i) {
      const CompactionOutput& o = result_.outputs[i];
      Napi::Object js = Napi::Object::New(env);
      js.Set("path", Napi::String::New(env, o.path));
      js.Set("keyStart", CopyToBuffer(env, o.key_start, kKeySize));
      js.Set("keyEnd", CopyToBuffer(env, o.key_end, kKeySize));
      js.Set("sizeBytes", Napi::Number::New(env, static_cast<double>(o.size_bytes)));
      outputs.Set(static_cast<uint32_t>(i), js);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("outputs", outputs);
    out.Set("bytesRead", Napi::Number::New(env, static_cast<double>(result_.bytes_read)));
    return out;
  }

 private:
  DeltaCompactionOptions opts_;
  DeltaCompactionResult result_;
};

Napi::Value JsCore::CompactDeltasJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    core_->CheckOpen();
    DeltaCompactionOptions opts;
    if (info.Length() < 1 || !info[0].IsArray()) BadArgument("inputs must be an array of paths");
    const Napi::Array inputs = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < inputs.Length(); ++i) {
      const Napi::Value v = inputs.Get(i);
      if (!v.IsString()) BadArgument("inputs must be an array of paths");
      opts.inputs.push_back(v.As<Napi::String>().Utf8Value());
    }
    opts.output_prefix = ArgString(info, 1, "outputPrefix");
    opts.output_suffix = ArgString(info, 2, "outputSuffix");
    opts.target_bytes = static_cast<uint64_t>(ArgInteger(info, 3, "targetBytes", kMaxSafeInteger));
    opts.codec = static_cast<uint8_t>(ArgInteger(info, 4, "codec", kCodecMax));
    opts.lsn_start = ArgLsn(info, 5, "lsnStart");
    opts.lsn_end = ArgLsn(info, 6, "lsnEnd");
    if (opts.lsn_start >= opts.lsn_end) BadArgument("lsnStart must be below lsnEnd");
    auto* worker = new CompactDeltasWorker(info.Env(), std::move(opts));
    worker->Queue();  // the worker deletes itself after OnOK
    return worker->Promise();
  });
}

// ---- LayerWriter ----

// One finishAsync call: the writer's B-tree build, tail writes, fsync and close run on a libuv
// worker thread, so a flush or compaction does not hold the event loop for them. The JS writer
// is kept alive by a reference and refuses every call until the promise settles (busy flag), so
// only this thread touches the C++ writer meanwhile.
class FinishWorker : public CodedPromiseWorker {
 public:
  FinishWorker(Napi::Env env, LayerWriter* writer, bool* busy, Napi::Object owner)
      : CodedPromiseWorker(env, "strata:layerWriterFinish", Priority::kBackground),
        writer_(writer),
        busy_(busy),
        owner_(Napi::Persistent(owner)) {}

 protected:
  void Work() override { size_ = writer_->Finish(); }
  Napi::Value Result() override { return Napi::Number::New(Env(), static_cast<double>(size_)); }
  void Settled() override { *busy_ = false; }

 private:
  LayerWriter* writer_;
  bool* busy_;
  Napi::ObjectReference owner_;  // keeps the JsLayerWriter (and so writer_ and busy_) alive
  uint64_t size_ = 0;
};

// One appendAsync call: the writer's Append (validation, value blocks, their checksums, the
// batched pwrite) on a libuv worker thread, so image creation does not hold the event loop for
// it. The three arrays are held by references until the promise settles; the caller does not
// change them meanwhile, and the writer refuses other calls (busy flag).
class AppendWorker : public CodedPromiseWorker {
 public:
  static constexpr size_t kAppendArgs = 3;  // indexKeys, blobs, willInit: all held

  AppendWorker(Napi::Env env, LayerWriter* writer, bool* busy, ByteSpan keys, ByteSpan blobs, ByteSpan will_init, const Napi::CallbackInfo& info)
      : CodedPromiseWorker(env, "strata:layerWriterAppend", Priority::kBackground),
        writer_(writer),
        busy_(busy),
        keys_(keys),
        blobs_(blobs),
        will_init_(will_init),
        owner_(Napi::Persistent(info.This().As<Napi::Object>())) {
    for (size_t i = 0; i < kAppendArgs; ++i) held_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }

 protected:
  void Work() override { writer_->Append(keys_.data, keys_.len, blobs_.data, blobs_.len, will_init_.data, will_init_.len); }
  void Settled() override { *busy_ = false; }

 private:
  LayerWriter* writer_;
  bool* busy_;
  ByteSpan keys_;
  ByteSpan blobs_;
  ByteSpan will_init_;
  Napi::ObjectReference owner_;
  std::vector<Napi::ObjectReference> held_;
};

// One finishArenaAsync call: a flush's whole write — the arena walk (delta_arena.h), blob
// encoding, value blocks, B-tree, fsync — on a libuv worker thread. The arena's typed arrays are
// held by references until the promise settles; the engine does not change a frozen layer.
class FinishArenaWorker : public CodedPromiseWorker {
 public:
  static constexpr size_t kArenaArgs = 6;  // keys, heads, entries, slabs, packedAt, packed: all held

  FinishArenaWorker(Napi::Env env, LayerWriter* writer, bool* busy, uint8_t codec, DeltaArenaView arena, const Napi::CallbackInfo& info)
      : CodedPromiseWorker(env, "strata:layerWriterFinishArena", Priority::kBackground),
        writer_(writer),
        busy_(busy),
        codec_(codec),
        arena_(std::move(arena)),
        owner_(Napi::Persistent(info.This().As<Napi::Object>())) {
    for (size_t i = 0; i < kArenaArgs; ++i) held_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }

 protected:
  void Work() override {
    AppendDeltaArena(*writer_, codec_, arena_);
    size_ = writer_->Finish();
  }
  Napi::Value Result() override { return Napi::Number::New(Env(), static_cast<double>(size_)); }
  void Settled() override { *busy_ = false; }

 private:
  LayerWriter* writer_;
  bool* busy_;
  uint8_t codec_;
  DeltaArenaView arena_;
  Napi::ObjectReference owner_;
  std::vector<Napi::ObjectReference> held_;
  uint64_t size_ = 0;
};

class JsLayerWriter : public Napi::ObjectWrap<JsLayerWriter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LayerWriter",
                       {
                           InstanceMethod<&JsLayerWriter::Append>("append"),
                           InstanceMethod<&JsLayerWriter::AppendAsync>("appendAsync"),
                           InstanceMethod<&JsLayerWriter::Finish>("finish"),
                           InstanceMethod<&JsLayerWriter::FinishAsync>("finishAsync"),
                           InstanceMethod<&JsLayerWriter::FinishArenaAsync>("finishArenaAsync"),
                           InstanceMethod<&JsLayerWriter::Abort>("abort"),
                       });
  }

  // new LayerWriter(path, kind, codec, keyStart, keyEnd, lsnStart, lsnEnd); kind 1 delta, 2 image.
  explicit JsLayerWriter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsLayerWriter>(info) {
    try {
      const std::string path = ArgString(info, 0, "path");
      LayerWriterOptions opts;
      opts.kind = static_cast<uint8_t>(ArgInteger(info, 1, "kind", 255));
      opts.codec = static_cast<uint8_t>(ArgInteger(info, 2, "codec", 255));
      ArgKey(info, 3, "keyStart", opts.key_start);
      ArgKey(info, 4, "keyEnd", opts.key_end);
      opts.lsn_start = ArgLsn(info, 5, "lsnStart");
      opts.lsn_end = ArgLsn(info, 6, "lsnEnd");
      kind_ = opts.kind;
      codec_ = opts.codec;
      writer_ = std::make_unique<LayerWriter>(path, opts);
    } catch (...) {
      RethrowFromConstructor(info.Env());
    }
  }

 private:
  Napi::Value Append(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      const ByteSpan keys = ArgBytes(info, 0, "indexKeys");
      const ByteSpan blobs = ArgBytes(info, 1, "blobs");
      const ByteSpan will_init = ArgBytes(info, 2, "willInit");
      writer_->Append(keys.data, keys.len, blobs.data, blobs.len, will_init.data, will_init.len);
      return info.Env().Undefined();
    });
  }

  // appendAsync(indexKeys, blobs, willInit) -> Promise<void>: Append on the thread pool (AppendWorker).
  Napi::Value AppendAsync(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      writer_->CheckOpen();  // a finished or aborted writer fails here, synchronously
      const ByteSpan keys = ArgBytes(info, 0, "indexKeys");
      const ByteSpan blobs = ArgBytes(info, 1, "blobs");
      const ByteSpan will_init = ArgBytes(info, 2, "willInit");
      auto* worker = new AppendWorker(info.Env(), writer_.get(), &busy_, keys, blobs, will_init, info);
      busy_ = true;
      worker->Queue();  // the worker deletes itself after OnOK
      return worker->Promise();
    });
  }

  Napi::Value Finish(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      return Napi::Number::New(info.Env(), static_cast<double>(writer_->Finish()));
    });
  }

  // finishAsync() -> Promise<number>: Finish() on the thread pool (FinishWorker).
  Napi::Value FinishAsync(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      writer_->CheckOpen();  // a finished or aborted writer fails here, synchronously
      auto* worker = new FinishWorker(info.Env(), writer_.get(), &busy_, info.This().As<Napi::Object>());
      busy_ = true;
      worker->Queue();  // the worker deletes itself after OnOK
      return worker->Promise();
    });
  }

  // finishArenaAsync(keys, heads, entries, slabs, packedAt, packed) -> Promise<number>: a delta
  // writer's AppendDeltaArena + Finish on the thread pool (FinishArenaWorker). heads and packedAt
  // arrive as byte views of their Int32Arrays; slabs is an array of Uint8Arrays.
  Napi::Value FinishArenaAsync(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      writer_->CheckOpen();
      if (kind_ != kLayerKindDelta) BadArgument("finishArenaAsync writes delta layers only");
      DeltaArenaView arena;
      arena.keys = ArgBytes(info, 0, "keys");
      arena.heads = ArgBytes(info, 1, "heads");
      arena.entries = ArgBytes(info, 2, "entries");
      if (info.Length() < 4 || !info[3].IsArray()) BadArgument("slabs must be an array of Uint8Arrays");
      const Napi::Array slabs = info[3].As<Napi::Array>();
      for (uint32_t i = 0; i < slabs.Length(); ++i) {
        const Napi::Value v = slabs.Get(i);
        if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) BadArgument("slabs must be an array of Uint8Arrays");
        auto arr = v.As<Napi::Uint8Array>();
        arena.slabs.push_back(ByteSpan{arr.Data(), arr.ElementLength()});
      }
      arena.packed_at = ArgBytes(info, 4, "packedAt");
      arena.packed = ArgBytes(info, 5, "packed");
      auto* worker = new FinishArenaWorker(info.Env(), writer_.get(), &busy_, codec_, std::move(arena), info);
      busy_ = true;
      worker->Queue();  // the worker deletes itself after OnOK
      return worker->Promise();
    });
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckIdle();
      writer_->Abort();
      return info.Env().Undefined();
    });
  }

  void CheckIdle() const {
    if (busy_) BadArgument("layer writer is busy (an appendAsync or finishAsync is in flight)");
  }

  std::unique_ptr<LayerWriter> writer_;
  uint8_t kind_ = 0;
  uint8_t codec_ = 0;
  bool busy_ = false;  // an AppendWorker, FinishWorker or FinishArenaWorker owns writer_ until its promise settles
};

// ---- test hooks: the C++ codec and checksum, reachable from test/native_*.test.ts ----

// crc32(data[, value]) -> number, like zlib.crc32
Napi::Value Crc32Js(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const ByteSpan data = ArgBytes(info, 0, "data");
    const uint32_t start = info.Length() > 1 ? ArgU32(info, 1, "value") : 0;
    return Napi::Number::New(info.Env(), Crc32(data.data, data.len, start));
  });
}

// setFaultInjection(opIndex, n, errno, shortWrite): test-only (fault_injection.h); opIndex -1 only
// counts. clearFaultInjection() disarms; faultInjectionCounts() -> calls per op, in fault::Op order.
Napi::Value SetFaultInjectionJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsBoolean()) {
      BadArgument("setFaultInjection takes (opIndex, n, errno, shortWrite)");
    }
    fault::Set(info[0].As<Napi::Number>().Int32Value(), static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()),
               info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

Napi::Value ClearFaultInjectionJs(const Napi::CallbackInfo& info) {
  fault::Clear();
  return info.Env().Undefined();
}

Napi::Value FaultInjectionCountsJs(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env(), fault::kOpCount);
  for (int i = 0; i < fault::kOpCount; i++) {
    out.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(fault::Calls(static_cast<fault::Op>(i)))));
  }
  return out;
}

// decompress(codec, stored, rawLen) -> Buffer; BAD_ARGUMENT describing the fault otherwise
Napi::Value DecompressJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const uint32_t codec = ArgU32(info, 0, "codec");
    const ByteSpan stored = ArgBytes(info, 1, "stored");
    const uint32_t raw_len = ArgU32(info, 2, "rawLen");
    if (codec > kCodecMax || codec == kCodecNone) BadArgument("codec must be 1 (lz4) or 2 (zstd)");
    if (raw_len > kMaxRecordSize) BadArgument("rawLen exceeds the largest record");
    std::vector<uint8_t> out(raw_len);
    // Kept per thread: a new Decompressor allocates a zstd context, which costs more than decoding
    // a page and is not what the core's reads (one long-lived Decompressor) pay.
    thread_local Decompressor d;
    if (const char* err = d.Decompress(static_cast<uint8_t>(codec), stored.data, stored.len, out.data(), raw_len)) {
      BadArgument(err);
    }
    return CopyToBuffer(info.Env(), out.data(), out.size());
  });
}

// redoChain(records: Buffer[] newest first, out: 8192-byte buffer): the redo engine alone, for
// the differential test of the two cores' redo rules; BAD_ARGUMENT for a malformed record or chain.
Napi::Value RedoChainJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 2 || !info[0].IsArray()) BadArgument("redoChain takes (records: Buffer[], out: Uint8Array)");
    const Napi::Array arr = info[0].As<Napi::Array>();
    const ByteSpan out = ArgBytes(info, 1, "out");
    if (out.len != kPageSize) BadArgument("out must be 8192 bytes");
    std::vector<RecordView> chain;
    for (uint32_t i = 0; i < arr.Length(); i++) {
      const Napi::Value v = arr.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) BadArgument("records must be Uint8Arrays");
      const Napi::Uint8Array rec = v.As<Napi::Uint8Array>();
      if (const char* err = CheckSerializedRecord(rec.Data(), rec.ByteLength())) BadArgument(std::string("record ") + std::to_string(i) + ": " + err);
      chain.push_back(RecordView{rec.Data(), rec.ByteLength()});
    }
    if (const char* err = ApplyRecords(chain.data(), chain.size(), out.data)) BadArgument(err);
    return info.Env().Undefined();
  });
}

// Most background slots one can ask for: far more than any machine's CPUs, so a typo fails.
constexpr uint32_t kMaxBackgroundThreads = 1024;

// setBackgroundThreads(slots) -> the previous count (background_thread.h)
Napi::Value SetBackgroundThreadsJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const uint32_t slots = ArgU32(info, 0, "slots");
    if (slots < 1 || slots > kMaxBackgroundThreads) BadArgument("slots must be 1 to 1024");
    return Napi::Number::New(info.Env(), SetBackgroundThreads(static_cast<int>(slots)));
  });
}

// backgroundLaneStats() -> { slots, busy, mostBusy }
Napi::Value BackgroundLaneStatsJs(const Napi::CallbackInfo& info) {
  const BackgroundLaneStats s = GetBackgroundLaneStats();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("slots", Napi::Number::New(info.Env(), s.slots));
  out.Set("busy", Napi::Number::New(info.Env(), s.busy));
  out.Set("mostBusy", Napi::Number::New(info.Env(), s.most_busy));
  return out;
}

// The optional held cell: an Int32Array shared with the thread that started this one, 1 while a
// slot is held. The call that takes or gives back the slot also sets the cell, and a terminated
// worker stops only between JS statements, so the cell never disagrees with the lane: when the
// worker has exited, the starting thread gives back whatever its cell still says it holds.
int32_t* HeldCell(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || info[0].IsUndefined()) return nullptr;
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    BadArgument(std::string(fn) + ": held must be an Int32Array");
  }
  Napi::Int32Array cell = info[0].As<Napi::Int32Array>();
  if (cell.ElementLength() < 1) BadArgument(std::string(fn) + ": held must have an element");
  return cell.Data();
}

// enterBackgroundLane(held?) blocks until a slot is free: for threads that compute background work
// themselves (the compression worker), never the event loop's.
Napi::Value EnterBackgroundLaneJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    int32_t* held = HeldCell(info, "enterBackgroundLane");
    if (held != nullptr && __atomic_load_n(held, __ATOMIC_SEQ_CST) != 0) {
      BadArgument("enterBackgroundLane: the held cell already holds a slot");
    }
    EnterBackgroundLane();
    if (held != nullptr) __atomic_store_n(held, 1, __ATOMIC_SEQ_CST);
    return info.Env().Undefined();
  });
}

// leaveBackgroundLane(held?) -> whether a slot was given back. With a cell, false when the cell
// holds none (already given back, by its thread or for it); without one, BAD_ARGUMENT when the
// lane has no slot held.
Napi::Value LeaveBackgroundLaneJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    int32_t* held = HeldCell(info, "leaveBackgroundLane");
    if (held != nullptr && __atomic_exchange_n(held, 0, __ATOMIC_SEQ_CST) == 0) return Napi::Boolean::New(info.Env(), false);
    if (!LeaveBackgroundLane()) BadArgument("leaveBackgroundLane: no slot of the background lane is held");
    return Napi::Boolean::New(info.Env(), true);
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Core", JsCore::Define(env));
  exports.Set("LayerWriter", JsLayerWriter::Define(env));
  exports.Set("crc32", Napi::Function::New<Crc32Js>(env, "crc32"));
  exports.Set("decompress", Napi::Function::New<DecompressJs>(env, "decompress"));
  exports.Set("redoChain", Napi::Function::New<RedoChainJs>(env, "redoChain"));
  exports.Set("setBackgroundThreads", Napi::Function::New<SetBackgroundThreadsJs>(env, "setBackgroundThreads"));
  exports.Set("backgroundLaneStats", Napi::Function::New<BackgroundLaneStatsJs>(env, "backgroundLaneStats"));
  exports.Set("enterBackgroundLane", Napi::Function::New<EnterBackgroundLaneJs>(env, "enterBackgroundLane"));
  exports.Set("leaveBackgroundLane", Napi::Function::New<LeaveBackgroundLaneJs>(env, "leaveBackgroundLane"));
  exports.Set("setFaultInjection", Napi::Function::New<SetFaultInjectionJs>(env, "setFaultInjection"));
  exports.Set("clearFaultInjection", Napi::Function::New<ClearFaultInjectionJs>(env, "clearFaultInjection"));
  exports.Set("faultInjectionCounts", Napi::Function::New<FaultInjectionCountsJs>(env, "faultInjectionCounts"));
  pg::InitPg(env, exports);  // PostgreSQL redo (native/pg/)
  return exports;
}

}  // namespace
}  // namespace strata

// The macro pastes its argument into an identifier, so it needs an unqualified name.
static Napi::Object InitStrata(Napi::Env env, Napi::Object exports) { return strata::Init(env, exports); }

NODE_API_MODULE(strata, InitStrata)
