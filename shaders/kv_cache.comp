#version 450
// Attention against a key/value cache, for decoding. Every new token has its position in positions [B, T]
// (i32, on the device, so one recorded program serves every step): token t of sequence b sits at
// positions[b, t]. The caches are [B, S, Hkv, D], f32, or f16 with CACHE16; new keys, values, queries and the
// output are f32.
//  append:  k and v [B, T, Hkv, D] into the caches at rows positions[b, t]. Rows outside [0, S) are dropped:
//           padding (marked -1), a sequence past its context.
//  partial: the first half of flash-decoding. Query row t of sequence b sees cache rows 0..positions[b, t]
//           (causal; none at a negative position), cut into chunks of `chunk` rows. A workgroup owns one chunk
//           and the G query heads of one kv head (the cache rows are read once for the group), walks the
//           chunk in tiles of WG keys with the online softmax, and stores per head its max score m (base 2),
//           sum l of 2^(score - m) and unnormalized output acc. Chunks past the row's last key exit at once:
//           the dispatch covers the whole cache and needs no re-recording as the sequence grows.
//  combine: out = Σ_c 2^(m_c - M) acc_c / Σ_c 2^(m_c - M) l_c over the row's chunks in order, M = max m_c;
//           a row without keys (negative position) gives zeros.
// Every sum runs in one thread in a fixed order: the same bits every run, no atomics.
//! variant append_f32 -DPASS=0 -DCACHE16=0
//! variant append_f16 -DPASS=0 -DCACHE16=1
//! variant partial_f32 -DPASS=1 -DCACHE16=0
//! variant partial_f16 -DPASS=1 -DCACHE16=1
//! variant combine -DPASS=2 -DCACHE16=0
#extension GL_EXT_control_flow_attributes : require
#define APPEND 0
#define PARTIAL 1
#define COMBINE 2

#if CACHE16
#include "types.glsl"
#define CACHE_T float16_t
#define LOAD(x) f16_to_f32_exact(x)
#define STORE(x) f32_to_f16_exact(x)
#else
#define CACHE_T float
#define LOAD(x) (x)
#define STORE(x) (x)
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;  // threads; keys per tile in partial
layout(constant_id = 1) const uint D = 64;   // head dim
layout(constant_id = 2) const uint G = 4;    // query heads per kv head, at most WG
const float NO_SCORE = -1e30;  // the running max before the first key: finite, so rescaling never gives NaN

layout(push_constant) uniform Push {
  uint B, T, S, Hq, Hkv;
  uint chunk;         // cache rows per partial workgroup, a multiple of WG
  float scale_log2e;  // log2(e) / sqrt(D): scores in base 2
  uint skip[6];       // by binding: where each tensor starts in its (aligned) binding
};

#if PASS == APPEND
layout(std430, binding = 0) readonly buffer K { float k[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) readonly buffer Positions { int positions[]; };
layout(std430, binding = 3) writeonly buffer KC { CACHE_T kc[]; };
layout(std430, binding = 4) writeonly buffer VC { CACHE_T vc[]; };

void main() {
  const uint W = Hkv * D, n = B * T * W, stride = gl_NumWorkGroups.x * WG;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
    uint r = i / W;
    int pos = positions[skip[2] + r];
    if (pos < 0 || pos >= int(S)) continue;
    uint at = ((r / T) * S + uint(pos)) * W + (i - r * W);
    kc[skip[3] + at] = STORE(k[skip[0] + i]);
    vc[skip[4] + at] = STORE(v[skip[1] + i]);
  }
}
#else

// Cache rows the query at position `pos` sees.
uint key_count(int pos) { return pos < 0 ? 0u : min(uint(pos) + 1u, S); }
// Where (b, t, head) starts in the stats [B,T,Hq,chunks,2] and acc [B,T,Hq,chunks,D] scratch, chunk c.
uint partial_at(uint b, uint t, uint h, uint c, uint chunks) { return ((b * T + t) * Hq + h) * chunks + c; }

#if PASS == PARTIAL
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer KC { CACHE_T kc[]; };
layout(std430, binding = 2) readonly buffer VC { CACHE_T vc[]; };
layout(std430, binding = 3) readonly buffer Positions { int positions[]; };
layout(std430, binding = 4) writeonly buffer Stats { float stats[]; };
layout(std430, binding = 5) writeonly buffer Acc { float acc_out[]; };

const uint DPT = (D + WG - 1) / WG;  // head dims per thread: thread i owns i, i + WG, ...
shared float qs[G * D];              // the group's queries, scaled into base-2 scores
shared float p[G * WG];              // a tile's scores, then their 2^(score - m)
shared float m_tile[G], rescale[G];

void main() {
  const uint c = gl_WorkGroupID.x, t = gl_WorkGroupID.y / Hkv, g = gl_WorkGroupID.y % Hkv, b = gl_WorkGroupID.z;
  const uint tid = gl_LocalInvocationID.x;
  const uint keys = key_count(positions[skip[3] + b * T + t]);
  const uint k_begin = c * chunk;
  if (k_begin >= keys) return;  // the whole workgroup: no barrier is skipped by some threads only
  const uint k_end = min(k_begin + chunk, keys);
  const uint q_at = skip[0] + ((b * T + t) * Hq + g * G) * D;  // the group's heads are adjacent
  for (uint e = tid; e < G * D; e += WG) qs[e] = q[q_at + e] * scale_log2e;

  float m = NO_SCORE, l = 0.0;  // head tid's running max and sum (threads tid < G)
  float acc[G * DPT];           // acc[i * DPT + j]: head i, dim tid + j * WG
  for (uint e = 0; e < G * DPT; ++e) acc[e] = 0.0;
  for (uint k0 = k_begin; k0 < k_end; k0 += WG) {
    const uint n = min(WG, k_end - k0);
    barrier();  // qs is written, and the previous tile's p read by all
    if (tid < n) {
      float s[G];
      for (uint i = 0; i < G; ++i) s[i] = 0.0;
      const uint at = skip[1] + ((b * S + k0 + tid) * Hkv + g) * D;
      [[dont_unroll]] for (uint d = 0; d < D; ++d) {
        float kd = LOAD(kc[at + d]);
        for (uint i = 0; i < G; ++i) s[i] += qs[i * D + d] * kd;
      }
      for (uint i = 0; i < G; ++i) p[i * WG + tid] = s[i];
    }
    barrier();
    if (tid < G) {
      float mx = m;
      for (uint j = 0; j < n; ++j) mx = max(mx, p[tid * WG + j]);
      rescale[tid] = exp2(m - mx);
      m_tile[tid] = mx;
      m = mx;
    }
    barrier();
    if (tid < n)
      for (uint i = 0; i < G; ++i) p[i * WG + tid] = exp2(p[i * WG + tid] - m_tile[i]);
    barrier();
    if (tid < G) {
      l *= rescale[tid];
      for (uint j = 0; j < n; ++j) l += p[tid * WG + j];
    }
    for (uint dd = 0; dd < DPT; ++dd) {
      const uint d = tid + dd * WG;
      if (d >= D) break;
      for (uint i = 0; i < G; ++i) acc[i * DPT + dd] *= rescale[i];
      [[dont_unroll]] for (uint j = 0; j < n; ++j) {
        float vd = LOAD(vc[skip[2] + ((b * S + k0 + j) * Hkv + g) * D + d]);
        for (uint i = 0; i < G; ++i) acc[i * DPT + dd] += p[i * WG + j] * vd;
      }
    }
  }
  const uint chunks = gl_NumWorkGroups.x;
  if (tid < G) {
    const uint at = partial_at(b, t, g * G + tid, c, chunks);
    stats[skip[4] + 2 * at] = m;
    stats[skip[4] + 2 * at + 1] = l;
  }
  for (uint i = 0; i < G; ++i)
    for (uint dd = 0; dd < DPT; ++dd) {
      const uint d = tid + dd * WG;
      if (d < D) acc_out[skip[5] + partial_at(b, t, g * G + i, c, chunks) * D + d] = acc[i * DPT + dd];
    }
}

#else  // COMBINE
layout(std430, binding = 0) readonly buffer Positions { int positions[]; };
layout(std430, binding = 1) readonly buffer Stats { float stats[]; };
layout(std430, binding = 2) readonly buffer Acc { float acc_in[]; };
layout(std430, binding = 3) writeonly buffer Out { float out_[]; };

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, b = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
  const uint chunks = (S + chunk - 1) / chunk;  // as the partial pass was dispatched
  const uint used = (key_count(positions[skip[0] + b * T + t]) + chunk - 1) / chunk;
  const uint first = partial_at(b, t, h, 0, chunks);
  float mx = NO_SCORE;
  for (uint c = 0; c < used; ++c) mx = max(mx, stats[skip[1] + 2 * (first + c)]);
  float l = 0.0;
  for (uint c = 0; c < used; ++c) l += exp2(stats[skip[1] + 2 * (first + c)] - mx) * stats[skip[1] + 2 * (first + c) + 1];
  const float inv_l = used > 0 ? 1.0 / l : 0.0;
  for (uint d = tid; d < D; d += WG) {
    float o = 0.0;
    for (uint c = 0; c < used; ++c)
      o += exp2(stats[skip[1] + 2 * (first + c)] - mx) * acc_in[skip[2] + (first + c) * D + d];
    out_[skip[3] + ((b * T + t) * Hq + h) * D + d] = o * inv_l;
  }
}
#endif
#endif
