#pragma once
// Reference attention against a key/value cache in double precision: caches [B, S, Hkv, D], and the position
// of each of T new tokens per sequence in positions [B, T] (token t of sequence b at positions[b * T + t]).
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct KvShape {
  int64_t B, T, S, Hq, Hkv, D;
};

// The caches after writing k and v [B, T, Hkv, D] at rows positions[b, t] that lie in [0, S).
void kv_append(const KvShape& s, const Vec& k, const Vec& v, const std::vector<int32_t>& positions, Vec& k_cache,
               Vec& v_cache);

// out [B, T, Hq, D]: query row t of sequence b attends (softmax of q·k/sqrt(D)) to the cache rows 0..p,
// p = min(positions[b, t], S - 1), none (zeros) when positions[b, t] < 0. Query head h reads kv head
// h / (Hq / Hkv).
Vec kv_attention(const KvShape& s, const Vec& q, const Vec& k_cache, const Vec& v_cache,
                 const std::vector<int32_t>& positions);

}  // namespace vkm::ref
