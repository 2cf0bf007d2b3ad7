#version 450
// Causal grouped-query attention, flash style: the T x T scores are never stored. q is [B,T,Hq,D], k and v
// are [B,T,Hkv,D], query head h reads kv head h / (Hq/Hkv); out is [B,T,Hq,D]; lse, the natural log of each
// row's softmax denominator, is f32 [B,Hq,T]. Scores are q·k/sqrt(D), kept in base 2 (scaled by log2 e) so
// that the exponentials are exp2. With padding, rows at or past their sequence's length are outputs of zero.
//
// Three passes, one per variant family; in each, a workgroup owns a block of rows and streams rows of the
// other side through shared memory TILE at a time:
//  forward: a block of query rows of one (b, head); walks key tiles up to the block's diagonal with the
//           online softmax (running max m and sum l; the output is rescaled when m grows).
//  dq:      the same blocks; recomputes each probability p = exp2(s - lse) and sums dq += p (dO·v - Δ) k.
//           It also computes Δ = rowsum(dO ∘ out) for its rows and stores it for the dkdv pass.
//  dkdv:    a block of key rows of one (b, kv head); walks every query head of the group, and each one's
//           query tiles from the block's diagonal to the end, in a fixed order: dv += p dO and
//           dk += p (dO·v - Δ) q, so the sum over the group needs no atomics and gives the same bits each run.
// Two kernels share the bindings, push constants and passes:
// - Per thread (any device, f32, f16 or bf16 by ACT_TYPE, storage.glsl): ROWS threads, one per row, each
//   holding its row in registers; every sum runs in fp32 in one thread in a fixed order.
// - Cooperative (COOP; f16 storage, D a multiple of 16): the products on tensor cores through
//   shaders/coopmat.glsl's 16 x 16 x 16 fragments, FlashAttention-2 style; see "Cooperative kernels" below.
//   COOP_EMULATE runs the same code with emulated fragments on any device (tests).
//! variant forward_f32 -DPASS=0 -DACT_TYPE=0
//! variant forward_f16 -DPASS=0 -DACT_TYPE=1
//! variant forward_bf16 -DPASS=0 -DACT_TYPE=2
//! variant dq_f32 -DPASS=1 -DACT_TYPE=0
//! variant dq_f16 -DPASS=1 -DACT_TYPE=1
//! variant dq_bf16 -DPASS=1 -DACT_TYPE=2
//! variant dkdv_f32 -DPASS=2 -DACT_TYPE=0
//! variant dkdv_f16 -DPASS=2 -DACT_TYPE=1
//! variant dkdv_bf16 -DPASS=2 -DACT_TYPE=2
//! variant forward_f16_coop -DPASS=0 -DACT_TYPE=1 -DCOOP=1
//! variant dq_f16_coop -DPASS=1 -DACT_TYPE=1 -DCOOP=1
//! variant dkdv_f16_coop -DPASS=2 -DACT_TYPE=1 -DCOOP=1
//! variant forward_f16_emulated -DPASS=0 -DACT_TYPE=1 -DCOOP=1 -DCOOP_EMULATE=1
//! variant dq_f16_emulated -DPASS=1 -DACT_TYPE=1 -DCOOP=1 -DCOOP_EMULATE=1
//! variant dkdv_f16_emulated -DPASS=2 -DACT_TYPE=1 -DCOOP=1 -DCOOP_EMULATE=1
#extension GL_EXT_control_flow_attributes : require
#define FORWARD 0
#define DQ 1
#define DKDV 2

#include "storage.glsl"

layout(local_size_x_id = 0) in;
#if COOP
layout(constant_id = 0) const uint THREADS = 128;  // groups of 32 invocations, each owning 16 rows of the block
const uint ROWS = THREADS / 2;
#else
layout(constant_id = 0) const uint ROWS = 64;  // rows of the block, one per thread
#endif
layout(constant_id = 1) const uint TILE = 32;  // rows of the other side staged at a time
layout(constant_id = 2) const uint D = 64;     // head dim, a multiple of 4 (of 16 for COOP)
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

#if COOP
// Cooperative kernels. A workgroup of 4 groups of 32 invocations owns a block of ROWS = 64 rows, 16 per group;
// each group keeps its rows as f16 fragments for the whole pass (q in the forward, q and dO in dq, k and v in
// dkdv) and sums its share of the outputs in fp32 fragments (o; dq; dk and dv). Per tile of TILE rows of the
// other side, staged as f16 in shared memory with zeros past the sequence:
//  - a group's 16 x TILE product with the tile (q·kᵀ, dO·vᵀ, k·qᵀ or v·dOᵀ) goes to the fp32 `scores`;
//  - the invocations take over by rows, two per row, each owning half of its columns: masks (causal and
//    length, applied to values), exponentials and the running softmax, in fp32; what multiplies the tile next
//    (p or ds) goes to `probs` as f16;
//  - a group's accumulators grow by probs · tile (p·v; ds·k; pᵀ·dO and dsᵀ·q).
// Fragments cannot be scaled by row, so the forward's rescale (when some row's max grew) and every write-out
// pass the accumulators through `scores`, a few fragments at a time. Every fragment call is made by whole
// groups: all loops are bounded per workgroup, never per row. Sums run in a fixed order: the same bits every
// run on one device.
const uint LM = 16, LN = 16, LK = 16;  // the fragment shape, the one the emulation has too
#include "coopmat.glsl"
const uint F = 16;        // a fragment's side
const uint DF = D / F;    // fragments along the head dim
const uint TF = TILE / F; // fragments along a tile
const uint HALF = TILE / 2;  // the columns of a row one invocation owns
// Row strides in shared memory, padded by 16 bytes: fragment rows stay 16-byte aligned and spread over banks.
const uint SD = D + 8, SP = TILE + 8, SS = TILE + 4;

// Two staged tiles at 0 and TILE * SD (k and v, or q and dO); before the walk, the block's own rows (at 0,
// one tensor at a time: TILE >= ROWS / 2).
shared float16_t staged[2 * TILE * SD];
shared float16_t probs[ROWS * SP];
shared float scores[ROWS * SS];
shared float row_factor[ROWS];  // what scale_rows multiplies each row by

#if PASS == DKDV
const uint KEPT = 2, SUMS = 2;  // k, v; dk, dv
shared float tile_lse2[TILE];   // lse in base 2
shared float tile_delta[TILE];
#elif PASS == DQ
const uint KEPT = 2, SUMS = 1;  // q, dO; dq
#else
const uint KEPT = 1, SUMS = 1;  // q; o
shared float row_sum[ROWS];     // the second half's share of l, at the end
shared uint grew;               // whether some row's max grew in this tile
#endif
COOP_A kept[KEPT * DF];  // set s, fragment d: the group's rows, head-dim columns [d * F, d * F + F)
COOP_ACC sums[SUMS * DF];

// Element i (before the skip) of input binding `bind`: q, k, v or dO.
ACT input_at(uint bind, uint i) {
  if (bind == BIND_Q) return q[skip[BIND_Q] + i];
  if (bind == BIND_K) return k[skip[BIND_K] + i];
#if PASS != FORWARD
  if (bind == BIND_DOUT) return dout[skip[BIND_DOUT] + i];
#endif
  return v[skip[BIND_V] + i];
}

// Rows [t0, t0 + n) of head `head` of input `bind` ([B,T,H,D]) to staged[at], SD apart; rows at or past `end`
// as zeros, so that they add nothing (and no NaN) to the products.
void stage(uint bind, uint b, uint head, uint H, uint t0, uint n, uint end, uint at) {
  for (uint e = gl_LocalInvocationIndex; e < n * D; e += THREADS) {
    uint r = e / D, c = e % D;
    staged[at + r * SD + c] = t0 + r < end ? input_at(bind, row_at(b, t0 + r, H, head) + c) : float16_t(0.0);
  }
}

// kept[set] = the group's rows of the block [t0, t0 + ROWS) of input `bind` (zeros at or past `end`).
void keep(uint set, uint bind, uint b, uint head, uint H, uint t0, uint end) {
  barrier();  // the staged rows are used up
  stage(bind, b, head, H, t0, ROWS, end, 0);
  barrier();
  FRAG_LOOP for (uint d = 0; d < DF; ++d) {
    COOP_LOAD(kept[set * DF + d], staged, COOP_GROUP * F * SD + d * F, SD, false);
  }
}

// The group's 16 rows of scores = kept[set] · (the tile staged at `at`)ᵀ: row r, column c is the dot product
// of the group's row r with staged row c.
void scores_with(uint set, uint at) {
  FRAG_LOOP for (uint c = 0; c < TF; ++c) {
    COOP_ACC s = coop_zero();
    FRAG_LOOP for (uint d = 0; d < DF; ++d) {
      COOP_B tile_t;
      COOP_LOAD(tile_t, staged, at + c * F * SD + d * F, SD, true);
      s = coop_muladd(kept[set * DF + d], tile_t, s);
    }
    COOP_STORE(s, scores, COOP_GROUP * F * SS + c * F, SS);
  }
}

// sums[set] += the group's 16 rows of probs · the tile staged at `at`.
void accumulate(uint set, uint at) {
  COOP_A p[TF];
  FRAG_LOOP for (uint c = 0; c < TF; ++c) {
    COOP_LOAD(p[c], probs, COOP_GROUP * F * SP + c * F, SP, false);
  }
  FRAG_LOOP for (uint d = 0; d < DF; ++d) {
    FRAG_LOOP for (uint c = 0; c < TF; ++c) {
      COOP_B tile;
      COOP_LOAD(tile, staged, at + c * F * SD + d * F, SD, false);
      sums[set * DF + d] = coop_muladd(p[c], tile, sums[set * DF + d]);
    }
  }
}

// Output element i (before the skip) of binding `bind`, rounded to the storage.
void put_output(uint bind, uint i, float x) {
#if PASS == FORWARD
  out_[skip[BIND_OUT] + i] = STORE(x);
#elif PASS == DQ
  dq[skip[BIND_DQ] + i] = STORE(x);
#else
  if (bind == BIND_DK)
    dk[skip[BIND_DK] + i] = STORE(x);
  else
    dv[skip[BIND_DV] + i] = STORE(x);
#endif
}

const uint RESCALE = 99;  // scale_rows' `bind` for "back into the accumulators" (no binding has that number)

// Each row r of sums[set] times row_factor[r], through `scores`, TF fragments at a time: back into the
// accumulators (bind RESCALE), or to output binding `bind` as rows [t0, t0 + ROWS) of head `head` of a
// [B,T,H,D] tensor (rows below T).
void scale_rows(uint set, uint bind, uint b, uint head, uint H, uint t0) {
  FRAG_LOOP for (uint d0 = 0; d0 < DF; d0 += TF) {
    const uint n = min(TF, DF - d0), width = n * F;
    barrier();  // scores and row_factor are written and read
    FRAG_LOOP for (uint f = 0; f < n; ++f) {
      COOP_STORE(sums[set * DF + d0 + f], scores, COOP_GROUP * F * SS + f * F, SS);
    }
    barrier();
    for (uint e = gl_LocalInvocationIndex; e < ROWS * width; e += THREADS) {
      uint r = e / width, c = e % width;
      float x = scores[r * SS + c] * row_factor[r];
      if (bind == RESCALE)
        scores[r * SS + c] = x;
      else if (t0 + r < T)
        put_output(bind, row_at(b, t0 + r, H, head) + d0 * F + c, x);
    }
    if (bind != RESCALE) continue;
    barrier();
    FRAG_LOOP for (uint f = 0; f < n; ++f) {
      COOP_LOAD(sums[set * DF + d0 + f], scores, COOP_GROUP * F * SS + f * F, SS, false);
    }
  }
}

void clear_sums() {
  FRAG_LOOP for (uint i = 0; i < SUMS * DF; ++i) sums[i] = coop_zero();
}

// The invocation's row of the block and the first of its HALF columns.
#define ROW (gl_LocalInvocationIndex % ROWS)
#define COL0 (gl_LocalInvocationIndex / ROWS * HALF)

// Whether query t sees key j: causal, and no query at or past the length sees any.
bool sees(uint t, uint j, uint len) { return j <= t && t < len; }

#if PASS == FORWARD || PASS == DQ
void main() {
  const uint b = gl_WorkGroupID.z, h = gl_WorkGroupID.y, g = h / (Hq / Hkv);
  // The last blocks have the most keys to walk: start them first.
  const uint t0 = (gl_NumWorkGroups.x - 1 - gl_WorkGroupID.x) * ROWS;
  const uint len = seq_length(b);
  const uint key_end = min(t0 + ROWS, len);  // no row of the block sees a key past this
  const uint t = t0 + ROW;
  const bool in_seq = t < len;
  const uint row = row_at(b, t, Hq, h);

  keep(0, BIND_Q, b, h, Hq, t0, len);
  clear_sums();
#if PASS == FORWARD
  float m = NO_SCORE, l = 0.0;  // the row's running max score; the sum of exp2(score - m) over my columns
  for (uint k0 = 0; k0 < key_end; k0 += TILE) {
    barrier();  // the previous tile is used up
    stage(BIND_K, b, g, Hkv, k0, TILE, key_end, 0);
    stage(BIND_V, b, g, Hkv, k0, TILE, key_end, TILE * SD);
    if (gl_LocalInvocationIndex == 0) grew = 0;
    barrier();
    scores_with(0, 0);  // q·kᵀ
    barrier();
    // Both invocations of a row find the same max over the whole row; each sums its own columns.
    float m_new = m;
    for (uint c = 0; c < TILE; ++c)
      if (sees(t, k0 + c, len)) m_new = max(m_new, scores[ROW * SS + c] * scale_log2e);
    const float rescale = exp2(m - m_new);
    l *= rescale;
    for (uint c = COL0; c < COL0 + HALF; ++c) {
      float p = sees(t, k0 + c, len) ? exp2(scores[ROW * SS + c] * scale_log2e - m_new) : 0.0;
      l += p;
      probs[ROW * SP + c] = float16_t(p);
    }
    m = m_new;
    if (COL0 == 0) {
      row_factor[ROW] = rescale;
      if (rescale != 1.0) atomicOr(grew, 1u);
    }
    barrier();
    // Before the first tile the sums are zero; where no max grew, the factors are all 1.
    if (k0 > 0 && grew != 0) scale_rows(0, RESCALE, b, h, Hq, t0);
    accumulate(0, TILE * SD);  // += p·v
  }
  if (COL0 != 0) row_sum[ROW] = l;
  barrier();
  if (COL0 == 0) {
    l += row_sum[ROW];
    row_factor[ROW] = in_seq ? 1.0 / l : 0.0;
    if (t < T) lse[skip[BIND_LSE] + stat_at(b, h, t)] = in_seq ? (m + log2(l)) * LN2 : 0.0;
  }
  scale_rows(0, BIND_OUT, b, h, Hq, t0);
#else
  keep(1, BIND_DOUT, b, h, Hq, t0, len);
  // Both invocations of a row compute its Δ and lse; the first stores Δ.
  float dlt = 0.0;  // Δ = rowsum(dO ∘ out): the softmax's share of every dp
  if (in_seq)
    for (uint c = 0; c < D; ++c) dlt += LOAD(dout[skip[BIND_DOUT] + row + c]) * LOAD(out_[skip[BIND_OUT] + row + c]);
  const float lse2 = in_seq ? lse[skip[BIND_LSE] + stat_at(b, h, t)] * LOG2E : 0.0;
  if (COL0 == 0 && t < T) delta[skip[BIND_DELTA] + stat_at(b, h, t)] = dlt;
  float p[HALF];  // the probabilities of my columns
  for (uint k0 = 0; k0 < key_end; k0 += TILE) {
    barrier();
    stage(BIND_K, b, g, Hkv, k0, TILE, key_end, 0);
    stage(BIND_V, b, g, Hkv, k0, TILE, key_end, TILE * SD);
    barrier();
    scores_with(0, 0);  // q·kᵀ
    barrier();
    for (uint c = 0; c < HALF; ++c) {
      uint j = COL0 + c;
      p[c] = sees(t, k0 + j, len) ? exp2(scores[ROW * SS + j] * scale_log2e - lse2) : 0.0;
    }
    barrier();
    scores_with(1, TILE * SD);  // dp = dO·vᵀ
    barrier();
    for (uint c = 0; c < HALF; ++c) {
      uint j = COL0 + c;
      probs[ROW * SP + j] = float16_t(p[c] * (scores[ROW * SS + j] - dlt));
    }
    barrier();
    accumulate(0, 0);  // += ds·k
  }
  if (COL0 == 0) row_factor[ROW] = scale;
  scale_rows(0, BIND_DQ, b, h, Hq, t0);
#endif
}
#else
void main() {
  const uint b = gl_WorkGroupID.z, g = gl_WorkGroupID.y, group = Hq / Hkv;
  const uint j0 = gl_WorkGroupID.x * ROWS;
  const uint len = seq_length(b);
  const uint j = j0 + ROW;

  keep(0, BIND_K, b, g, Hkv, j0, len);
  keep(1, BIND_V, b, g, Hkv, j0, len);
  clear_sums();
  float p[HALF];  // the probabilities of my columns
  for (uint h = g * group; h < (g + 1) * group; ++h) {
    for (uint i0 = j0; i0 < len; i0 += TILE) {  // queries before j0 see none of the block's keys
      barrier();
      stage(BIND_Q, b, h, Hq, i0, TILE, len, 0);
      stage(BIND_DOUT, b, h, Hq, i0, TILE, len, TILE * SD);
      for (uint c = gl_LocalInvocationIndex; c < TILE; c += THREADS) {
        bool in_seq = i0 + c < len;
        tile_lse2[c] = in_seq ? lse[skip[BIND_LSE] + stat_at(b, h, i0 + c)] * LOG2E : 0.0;
        tile_delta[c] = in_seq ? delta[skip[BIND_DELTA] + stat_at(b, h, i0 + c)] : 0.0;
      }
      barrier();
      scores_with(0, 0);  // k·qᵀ
      barrier();
      for (uint c = 0; c < HALF; ++c) {
        uint i = COL0 + c;  // the column of query i0 + i
        p[c] = sees(i0 + i, j, len) ? exp2(scores[ROW * SS + i] * scale_log2e - tile_lse2[i]) : 0.0;
        probs[ROW * SP + i] = float16_t(p[c]);
      }
      barrier();
      accumulate(1, TILE * SD);   // dv += pᵀ·dO
      scores_with(1, TILE * SD);  // dpᵀ = v·dOᵀ
      barrier();
      for (uint c = 0; c < HALF; ++c) {
        uint i = COL0 + c;
        probs[ROW * SP + i] = float16_t(p[c] * (scores[ROW * SS + i] - tile_delta[i]));
      }
      barrier();
      accumulate(0, 0);  // dk += dsᵀ·q
    }
  }
  if (COL0 == 0) row_factor[ROW] = scale;
  scale_rows(0, BIND_DK, b, g, Hkv, j0);
  barrier();  // row_factor is read
  if (COL0 == 0) row_factor[ROW] = 1.0;
  scale_rows(1, BIND_DV, b, g, Hkv, j0);
}
#endif
#else

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
#endif  // COOP
