#pragma once
// Attention against a key/value cache, for decoding (shaders/kv_cache.comp). Every new token has its position
// in positions i32 [B, T], on the device, so that a recorded program serves every step while the host (or the
// sampler) moves the positions on; padding is marked -1. Caches are [B, S, Hkv, D], f32 or f16 (the mixed
// path; rounded to nearest even when appended, read back in fp32); new keys, values, queries and outputs are
// f32. D is a multiple of 4, at most 256; Hq a multiple of Hkv, at most 16 query heads per kv head.
#include <cstdint>

#include "engine/program.hpp"

namespace vkm::ops {

// k, v [B, T, Hkv, D] into k_cache, v_cache at rows positions[b, t]. Rows outside [0, S) are dropped: padding,
// a sequence run past its context.
void kv_append(Program& p, const Tensor& k, const Tensor& v, const Tensor& k_cache, const Tensor& v_cache,
               const Tensor& positions);

// f32 elements of scratch kv_attention needs for q [B, T, Hq, D] against caches of S rows.
int64_t kv_attention_scratch_elems(const Tensor& q, int64_t S);

// out [B, T, Hq, D] = causal softmax(q·kᵀ/sqrt(D))·v, query row t of sequence b seeing the cache rows
// 0..positions[b, t] (clamped to the cache; a row at a negative position sees none and gives zeros). The
// work is split over the cache in fixed chunks (flash-decoding) and combined in chunk order: bit-identical
// run to run; chunks past a row's last key return at once. out and scratch must not overlap anything else.
void kv_attention(Program& p, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& positions,
                  const Tensor& out, const Tensor& scratch);

}  // namespace vkm::ops
