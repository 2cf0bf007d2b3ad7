#include "engine/ops/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <tuple>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

constexpr uint32_t kThreads = 64;    // kv_cache.comp's WG: threads, and keys per tile of the partial pass
constexpr int64_t kMaxChunks = 32;   // partial workgroups per query row and kv head, at most
constexpr int64_t kMaxGroup = 16;    // query heads per kv head
constexpr int64_t kMaxHeadDim = 256;

// The cache cut into chunks of whole tiles, at most kMaxChunks of them (the combine pass counts them the same
// way, from S and chunk).
struct Split {
  int64_t chunks, chunk;
};
Split split(int64_t S) {
  const int64_t tiles = ((S + kMaxChunks - 1) / kMaxChunks + kThreads - 1) / kThreads;
  const int64_t chunk = std::max<int64_t>(tiles, 1) * kThreads;
  return {(S + chunk - 1) / chunk, chunk};
}

struct Push {
  uint32_t B, T, S, Hq, Hkv, chunk;
  float scale_log2e;
  uint32_t skip[6];
};

// Binds each tensor from the aligned offset at or below it, its skip in the push constants.
std::vector<Binding> bound(const Context& ctx, std::vector<Binding> bindings, Push& push) {
  for (size_t i = 0; i < bindings.size(); ++i)
    std::tie(bindings[i].tensor, push.skip[i]) = aligned_span(ctx, bindings[i].tensor, 0, bindings[i].tensor.numel());
  return bindings;
}

// What both ops ask of the caches [B, S, Hkv, D] and positions i32 [B, T].
void check_cache(const std::string& what, const Context& ctx, const Tensor& k_cache, const Tensor& v_cache,
                 const Tensor& positions, int64_t T) {
  if (!k_cache || !v_cache || !positions) throw Error(what + ": a tensor is not allocated");
  if (k_cache.rank() != 4 || k_cache.shape != v_cache.shape || k_cache.numel() == 0)
    throw Error(what + ": the caches must be non-empty [B,S,Hkv,D] of one shape");
  if ((k_cache.dtype != DType::f32 && k_cache.dtype != DType::f16) || v_cache.dtype != k_cache.dtype)
    throw Error(what + ": the caches must be both f32 or both f16");
  const int64_t D = k_cache.dim(3);
  if (D % 4 != 0 || D > kMaxHeadDim) throw Error(what + ": the head dim must be a multiple of 4, at most 256");
  if (positions.dtype != DType::i32 || positions.shape != Shape{k_cache.dim(0), T})
    throw Error(what + ": positions must be i32 [B, T] = [" + std::to_string(k_cache.dim(0)) + ", " +
                std::to_string(T) + "]");
  if (k_cache.overlaps(v_cache) || k_cache.overlaps(positions) || v_cache.overlaps(positions))
    throw Error(what + ": the caches and positions must not overlap");
  if (k_cache.dtype == DType::f16) require_16bit(ctx, what.c_str());
  const DeviceInfo& d = ctx.info();
  if (k_cache.bytes() + d.min_storage_offset_alignment > d.max_storage_buffer_range)
    throw Error(what + ": a cache of " + std::to_string(k_cache.bytes() >> 20) +
                " MiB is larger than one storage binding of device '" + d.name + "' may be; use a shorter context "
                "or a smaller batch");
}

std::string cache_variant(const char* pass, const Tensor& cache) {
  return std::string("kv_cache.") + pass + (cache.dtype == DType::f16 ? "_f16" : "_f32");
}

}  // namespace

void kv_append(Program& p, const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
               const Tensor& positions) {
  const std::string what = "kv_append (k " + k.describe() + ", v " + v.describe() + ", k_cache " +
                           k_cache.describe() + ", v_cache " + v_cache.describe() + ", positions " +
                           positions.describe() + ")";
  Context& ctx = p.context();
  check_cache(what, ctx, k_cache, v_cache, positions, k.rank() == 4 ? k.dim(1) : 0);
  const int64_t B = k_cache.dim(0), S = k_cache.dim(1), Hkv = k_cache.dim(2), D = k_cache.dim(3);
  if (!k || !v || k.dtype != DType::f32 || v.dtype != DType::f32 || k.shape != v.shape || k.rank() != 4 ||
      k.dim(0) != B || k.dim(2) != Hkv || k.dim(3) != D || k.dim(1) == 0)
    throw Error(what + ": k and v must be f32 [B,T,Hkv,D] with the caches' B, Hkv and D");
  for (const Tensor* c : {&k_cache, &v_cache})
    if (c->overlaps(k) || c->overlaps(v)) throw Error(what + ": a cache overlaps k or v");
  Push push{uint32_t(B), uint32_t(k.dim(1)), uint32_t(S), 0, uint32_t(Hkv), 0, 0, {}};
  const Kernel& kernel = ctx.kernel({cache_variant("append", k_cache), 5, sizeof(Push), {kThreads, uint32_t(D)}});
  p.dispatch(kernel, bound(ctx, {in(k), in(v), in(positions), out(k_cache), out(v_cache)}, push), push,
             stride_groups(k.numel(), kThreads), 1, 1, "kv_append");
}

int64_t kv_attention_scratch_elems(const Tensor& q, int64_t S) {
  if (q.rank() != 4 || S <= 0) return 0;
  return q.dim(0) * q.dim(1) * q.dim(2) * split(S).chunks * (q.dim(3) + 2);
}

void kv_attention(Program& p, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& positions,
                  const Tensor& out, const Tensor& scratch) {
  const std::string what = "kv_attention (q " + q.describe() + ", k_cache " + k_cache.describe() + ", v_cache " +
                           v_cache.describe() + ", positions " + positions.describe() + ", out " + out.describe() +
                           ")";
  Context& ctx = p.context();
  check_cache(what, ctx, k_cache, v_cache, positions, q.rank() == 4 ? q.dim(1) : 0);
  const int64_t B = k_cache.dim(0), S = k_cache.dim(1), Hkv = k_cache.dim(2), D = k_cache.dim(3);
  if (!q || q.dtype != DType::f32 || q.rank() != 4 || q.dim(0) != B || q.dim(3) != D || q.dim(1) == 0)
    throw Error(what + ": q must be f32 [B,T,Hq,D] with the caches' B and D");
  const int64_t T = q.dim(1), Hq = q.dim(2);
  if (Hq % Hkv != 0 || Hq / Hkv > kMaxGroup)
    throw Error(what + ": the query heads must be a multiple of the kv heads, at most 16 per kv head");
  if (!out || out.dtype != DType::f32 || out.shape != q.shape) throw Error(what + ": out must be f32 with q's shape");
  const int64_t need = kv_attention_scratch_elems(q, S);
  if (!scratch || scratch.dtype != DType::f32 || scratch.numel() < need)
    throw Error(what + ": scratch " + scratch.describe() + " must be f32 with at least " + std::to_string(need) +
                " elements (kv_attention_scratch_elems)");
  const Split s = split(S);
  const int64_t rows = B * T * Hq * s.chunks;
  const Tensor stats = scratch.flat().view(0, {rows * 2}), acc = scratch.flat().view(rows * 2, {rows * D});
  for (const Tensor* t : {&out, &stats, &acc})
    for (const Tensor* input : {&q, &k_cache, &v_cache, &positions})
      if (t->overlaps(*input)) throw Error(what + ": out or scratch overlaps an input");
  if (out.overlaps(scratch)) throw Error(what + ": out overlaps scratch");
  const uint32_t G = uint32_t(Hq / Hkv);
  const DeviceInfo& d = ctx.info();
  if ((G * D + G * kThreads + 2 * G) * 4 > d.max_shared_memory)
    throw Error(what + ": " + std::to_string(G) + " query heads of dim " + std::to_string(D) +
                " per kv head need more shared memory than device '" + d.name + "' has");

  const double scale = 1.0 / std::sqrt(double(D));
  Push push{uint32_t(B), uint32_t(T), uint32_t(S), uint32_t(Hq), uint32_t(Hkv), uint32_t(s.chunk),
            float(scale * std::numbers::log2e), {}};
  const std::vector<uint32_t> spec{kThreads, uint32_t(D), G};
  const std::string shape = " B" + std::to_string(B) + " T" + std::to_string(T) + " S" + std::to_string(S);
  const Kernel& partial = ctx.kernel({cache_variant("partial", k_cache), 6, sizeof(Push), spec});
  p.dispatch(partial, bound(ctx, {in(q), in(k_cache), in(v_cache), in(positions), vkm::out(stats), vkm::out(acc)}, push),
             push, uint32_t(s.chunks), uint32_t(T * Hkv), uint32_t(B), "kv_attention.partial" + shape);
  const Kernel& combine = ctx.kernel({"kv_cache.combine", 4, sizeof(Push), spec});
  p.dispatch(combine, bound(ctx, {in(positions), in(stats), in(acc), vkm::out(out)}, push), push, uint32_t(Hq),
             uint32_t(T), uint32_t(B), "kv_attention.combine" + shape);
}

}  // namespace vkm::ops
