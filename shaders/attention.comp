#version 450
// Causal grouped-query attention, flash style: the T x T scores are never stored. q is [B,T,Hq,D], k and v
// are [B,T,Hkv,D], query head h reads kv head h / (Hq/Hkv); out is [B,T,Hq,D]; lse, the natural log of each
// row's softmax denominator, is f32 [B,Hq,T]. Scores are q·k/sqrt(D), kept in base 2 (scaled by log2 e) so
// that the exponentials are exp2. With padding, rows at or past their sequence's length are outputs of zero.
//
// Three passes, one per variant family; in each, a workgroup of ROWS threads owns a block of ROWS rows, one
// per thread, held in registers, and streams rows of the other side through shared memory TILE at a time:
//  forward: a block of query rows of one (b, head); walks key tiles up to the block's diagonal with the
//           online softmax (running max m and sum l; the output is rescaled when m grows).
//  dq:      the same blocks; recomputes each probability p = exp2(s - lse) and sums dq += p (dO·v - Δ) k.
//           It also computes Δ = rowsum(dO ∘ out) for its rows and stores it for the dkdv pass.
//  dkdv:    a block of key rows of one (b, kv head); walks every query head of the group, and each one's
//           query tiles from the block's diagonal to the end, in a fixed order: dv += p dO and
//           dk += p (dO·v - Δ) q, so the sum over the group needs no atomics and gives the same bits each run.
// Every sum runs in fp32 in one thread in a fixed order; f16 and bf16 variants (ACT_TYPE, storage.glsl) only
// store 16-bit tensors.
//! variant forward_f32 -DPASS=0 -DACT_TYPE=0
//! variant forward_f16 -DPASS=0 -DACT_TYPE=1
//! variant forward_bf16 -DPASS=0 -DACT_TYPE=2
//! variant dq_f32 -DPASS=1 -DACT_TYPE=0
//! variant dq_f16 -DPASS=1 -DACT_TYPE=1
//! variant dq_bf16 -DPASS=1 -DACT_TYPE=2
//! variant dkdv_f32 -DPASS=2 -DACT_TYPE=0
//! variant dkdv_f16 -DPASS=2 -DACT_TYPE=1
//! variant dkdv_bf16 -DPASS=2 -DACT_TYPE=2
#extension GL_EXT_control_flow_attributes : require
#define FORWARD 0
#define DQ 1
#define DKDV 2

#include "storage.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint ROWS = 64;  // rows of the block, one per thread
layout(constant_id = 1) const uint TILE = 32;  // rows of the other side staged at a time
layout(constant_id = 2) const uint D = 64;     // head dim, a multiple of 4
const uint D4 = D / 4;
const float LOG2E = 1.4426950408889634;
const float LN2 = 0.6931471805599453;
// The running max before the first key: finite, so that rescaling by exp2(m - x) gives 0 and never a NaN.
const float NO_SCORE = -1e30;

// Bindings 0-3 are shared by every pass; the rest are each pass's own. A skip per binding (push constant)
// is where its tensor starts within the binding, which begins at the aligned offset at or below it.
#define BIND_Q 0
#define BIND_K 1
#define BIND_V 2
#define BIND_LENGTHS 3
layout(std430, binding = BIND_Q) readonly buffer Q { ACT q[]; };
layout(std430, binding = BIND_K) readonly buffer K { ACT k[]; };
layout(std430, binding = BIND_V) readonly buffer V { ACT v[]; };
layout(std430, binding = BIND_LENGTHS) readonly buffer Lengths { int lengths[]; };
#if PASS == FORWARD
#define BIND_OUT 4
#define BIND_LSE 5
layout(std430, binding = BIND_OUT) writeonly buffer Out { ACT out_[]; };
layout(std430, binding = BIND_LSE) writeonly buffer Lse { float lse[]; };
#elif PASS == DQ
#define BIND_OUT 4
#define BIND_LSE 5
#define BIND_DOUT 6
#define BIND_DQ 7
#define BIND_DELTA 8
layout(std430, binding = BIND_OUT) readonly buffer Out { ACT out_[]; };
layout(std430, binding = BIND_LSE) readonly buffer Lse { float lse[]; };
layout(std430, binding = BIND_DOUT) readonly buffer DOut { ACT dout[]; };
layout(std430, binding = BIND_DQ) writeonly buffer DQ_ { ACT dq[]; };
layout(std430, binding = BIND_DELTA) writeonly buffer Delta { float delta[]; };
#else
#define BIND_LSE 4
#define BIND_DOUT 5
#define BIND_DELTA 6
#define BIND_DK 7
#define BIND_DV 8
layout(std430, binding = BIND_LSE) readonly buffer Lse { float lse[]; };
layout(std430, binding = BIND_DOUT) readonly buffer DOut { ACT dout[]; };
layout(std430, binding = BIND_DELTA) readonly buffer Delta { float delta[]; };
layout(std430, binding = BIND_DK) writeonly buffer DK { ACT dk[]; };
layout(std430, binding = BIND_DV) writeonly buffer DV { ACT dv[]; };
#endif

layout(push_constant) uniform Push {
  uint T, Hq, Hkv;
  uint padded;  // 0: every sequence is T long, and binding 3 is a stand-in that is never read
  float scale;  // 1/sqrt(D)
  float scale_log2e;
  uint skip[9];  // by binding
};

// Positions of sequence b that are not padding.
uint seq_length(uint b) { return padded != 0 ? uint(clamp(lengths[skip[BIND_LENGTHS] + b], 0, int(T))) : T; }
// Where row t of one head starts in a [B,T,H,D] tensor, before the binding's skip.
uint row_at(uint b, uint t, uint H, uint head) { return ((b * T + t) * H + head) * D; }
// Where (b, head, t) sits in a [B,Hq,T] tensor (lse, Δ), before the skip.
uint stat_at(uint b, uint head, uint t) { return (b * Hq + head) * T + t; }

#if PASS == DKDV
shared vec4 tile_q[TILE * D4];
shared vec4 tile_do[TILE * D4];
shared float tile_lse2[TILE];  // lse in base 2
shared float tile_delta[TILE];

// Stages query rows [t0, t0 + TILE) of head `head` that lie before `end`; no thread reads the rows past it.
void stage(uint b, uint head, uint t0, uint end) {
  for (uint e = gl_LocalInvocationID.x; e < TILE * D; e += ROWS) {
    uint r = e / D, c = e % D;
    if (t0 + r >= end) break;  // rows only grow with e
    uint at = row_at(b, t0 + r, Hq, head) + c;
    tile_q[r * D4 + c / 4][c % 4] = LOAD(q[skip[BIND_Q] + at]);
    tile_do[r * D4 + c / 4][c % 4] = LOAD(dout[skip[BIND_DOUT] + at]);
  }
  for (uint r = gl_LocalInvocationID.x; r < TILE && t0 + r < end; r += ROWS) {
    tile_lse2[r] = lse[skip[BIND_LSE] + stat_at(b, head, t0 + r)] * LOG2E;
    tile_delta[r] = delta[skip[BIND_DELTA] + stat_at(b, head, t0 + r)];
  }
}
#else
shared vec4 tile_k[TILE * D4];
shared vec4 tile_v[TILE * D4];

// Stages key and value rows [t0, t0 + TILE) of kv head `g` that lie before `end`; no thread reads the rows
// past it.
void stage(uint b, uint g, uint t0, uint end) {
  for (uint e = gl_LocalInvocationID.x; e < TILE * D; e += ROWS) {
    uint r = e / D, c = e % D;
    if (t0 + r >= end) break;  // rows only grow with e
    uint at = row_at(b, t0 + r, Hkv, g) + c;
    tile_k[r * D4 + c / 4][c % 4] = LOAD(k[skip[BIND_K] + at]);
    tile_v[r * D4 + c / 4][c % 4] = LOAD(v[skip[BIND_V] + at]);
  }
}
#endif

#if PASS == FORWARD || PASS == DQ
void main() {
  const uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y, g = h / (Hq / Hkv);
  // The last blocks have the most keys to walk: start them first.
  const uint t0 = (gl_NumWorkGroups.x - 1 - gl_WorkGroupID.x) * ROWS;
  const uint t = t0 + gl_LocalInvocationID.x;
  const uint len = seq_length(b);
  const bool in_seq = t < len;
  const uint key_end = min(t0 + ROWS, len);  // no row of the block sees a key past this
  const uint row = row_at(b, t, Hq, h);

  vec4 qs[D4];  // q scaled into base-2 scores
  for (uint c = 0; c < D4; ++c) {
    qs[c] = vec4(0.0);
    if (in_seq)
      for (uint i = 0; i < 4; ++i) qs[c][i] = LOAD(q[skip[BIND_Q] + row + 4 * c + i]) * scale_log2e;
  }
#if PASS == FORWARD
  vec4 acc[D4];
  for (uint c = 0; c < D4; ++c) acc[c] = vec4(0.0);
  float m = NO_SCORE, l = 0.0;  // running max score and sum of exp2(score - m)
  for (uint k0 = 0; k0 < key_end; k0 += TILE) {
    barrier();  // the previous tile is used up
    stage(b, g, k0, key_end);
    barrier();
    if (!in_seq) continue;
    [[dont_unroll]] for (uint j = 0; j < TILE; ++j) {
      if (k0 + j > t) break;  // keys only grow with j
      float x = 0.0;
      for (uint c = 0; c < D4; ++c) x += dot(qs[c], tile_k[j * D4 + c]);
      // A new max rescales what was summed so far; after the first few keys that is rare.
      if (x > m) {
        float rescale = exp2(m - x);
        l *= rescale;
        for (uint c = 0; c < D4; ++c) acc[c] *= rescale;
        m = x;
      }
      float p = exp2(x - m);
      l += p;
      for (uint c = 0; c < D4; ++c) acc[c] += p * tile_v[j * D4 + c];
    }
  }
  if (t >= T) return;
  const float inv_l = in_seq ? 1.0 / l : 0.0;
  for (uint c = 0; c < D4; ++c)
    for (uint i = 0; i < 4; ++i) out_[skip[BIND_OUT] + row + 4 * c + i] = STORE(acc[c][i] * inv_l);
  lse[skip[BIND_LSE] + stat_at(b, h, t)] = in_seq ? (m + log2(l)) * LN2 : 0.0;
#else
  vec4 dos[D4], acc[D4];
  float dlt = 0.0;  // Δ = rowsum(dO ∘ out): the softmax's share of every dp
  for (uint c = 0; c < D4; ++c) {
    acc[c] = vec4(0.0);
    dos[c] = vec4(0.0);
    if (!in_seq) continue;
    for (uint i = 0; i < 4; ++i) {
      dos[c][i] = LOAD(dout[skip[BIND_DOUT] + row + 4 * c + i]);
      dlt += dos[c][i] * LOAD(out_[skip[BIND_OUT] + row + 4 * c + i]);
    }
  }
  const float lse2 = in_seq ? lse[skip[BIND_LSE] + stat_at(b, h, t)] * LOG2E : 0.0;
  for (uint k0 = 0; k0 < key_end; k0 += TILE) {
    barrier();
    stage(b, g, k0, key_end);
    barrier();
    if (!in_seq) continue;
    [[dont_unroll]] for (uint j = 0; j < TILE; ++j) {
      if (k0 + j > t) break;  // keys only grow with j
      float s = 0.0, dp = 0.0;
      for (uint c = 0; c < D4; ++c) {
        s += dot(qs[c], tile_k[j * D4 + c]);
        dp += dot(dos[c], tile_v[j * D4 + c]);
      }
      float ds = exp2(s - lse2) * (dp - dlt);
      for (uint c = 0; c < D4; ++c) acc[c] += ds * tile_k[j * D4 + c];
    }
  }
  if (t >= T) return;
  for (uint c = 0; c < D4; ++c)
    for (uint i = 0; i < 4; ++i) dq[skip[BIND_DQ] + row + 4 * c + i] = STORE(acc[c][i] * scale);
  delta[skip[BIND_DELTA] + stat_at(b, h, t)] = dlt;
#endif
}
#else
void main() {
  const uint b = gl_WorkGroupID.z, g = gl_WorkGroupID.y, group = Hq / Hkv;
  // Early key blocks are seen by the most queries; they come first anyway.
  const uint j0 = gl_WorkGroupID.x * ROWS;
  const uint j = j0 + gl_LocalInvocationID.x;
  const uint len = seq_length(b);
  const bool in_seq = j < len;
  const uint row = row_at(b, j, Hkv, g);

  vec4 ks[D4], vs[D4], dk_acc[D4], dv_acc[D4];  // k scaled into base-2 scores
  for (uint c = 0; c < D4; ++c) {
    ks[c] = vs[c] = dk_acc[c] = dv_acc[c] = vec4(0.0);
    if (!in_seq) continue;
    for (uint i = 0; i < 4; ++i) {
      ks[c][i] = LOAD(k[skip[BIND_K] + row + 4 * c + i]) * scale_log2e;
      vs[c][i] = LOAD(v[skip[BIND_V] + row + 4 * c + i]);
    }
  }
  for (uint h = g * group; h < (g + 1) * group; ++h) {
    for (uint i0 = j0; i0 < len; i0 += TILE) {  // queries before j0 see none of the block's keys
      barrier();
      stage(b, h, i0, len);
      barrier();
      if (!in_seq) continue;
      [[dont_unroll]] for (uint r = 0; r < TILE; ++r) {
        uint i = i0 + r;
        if (i < j || i >= len) continue;
        float s = 0.0, dp = 0.0;
        for (uint c = 0; c < D4; ++c) {
          s += dot(tile_q[r * D4 + c], ks[c]);
          dp += dot(tile_do[r * D4 + c], vs[c]);
        }
        float p = exp2(s - tile_lse2[r]);
        float ds = p * (dp - tile_delta[r]);
        for (uint c = 0; c < D4; ++c) {
          dv_acc[c] += p * tile_do[r * D4 + c];
          dk_acc[c] += ds * tile_q[r * D4 + c];
        }
      }
    }
  }
  if (j >= T) return;
  for (uint c = 0; c < D4; ++c)
    for (uint i = 0; i < 4; ++i) {
      dk[skip[BIND_DK] + row + 4 * c + i] = STORE(dk_acc[c][i] * scale);
      dv[skip[BIND_DV] + row + 4 * c + i] = STORE(dv_acc[c][i]);
    }
}
#endif
