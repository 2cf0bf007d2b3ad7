#version 450
// C = op(A)·op(B), or C += op(A)·op(B): row-major, one matrix product per gl_WorkGroupID.z, arithmetic and
// sums in fp32 whatever the storage. op(A) is A stored [M,K], or A stored [K,M] when TRANS_A; op(B) is B
// stored [K,N], or B stored [N,K] when TRANS_B. A linear layer's three products: Y = X·Wᵀ is nt, dX = dY·W
// is nn, dW += dYᵀ·X is tn. Storage: fp32 throughout; or A and B f16 (F16_IN) with C f16 (F16_OUT), the
// mixed-precision forward and backward, or with C fp32, for weight gradients summed into fp32; the same in
// bf16 (BF16_IN, BF16_OUT; tiled kernel only). A 16-bit product is rounded once, when C is stored (C +=
// product: once, after adding the old C).
//
// A workgroup computes a BM x BN block of C, walking K in slices of BK that pass through shared memory; the
// next slice is loaded from memory into registers while the current one is multiplied. Two kernels share
// this frame:
// - Tiled (any device): TX x TY threads, shared memory as fp32, each thread summing a TM x TN micro-tile in
//   registers. A thread's rows (columns) come in runs of 4 spaced 4*TY (4*TX) apart, so that in the inner
//   loop neighbouring threads read adjacent or identical vec4s of shared memory (no bank conflicts), and per
//   k a thread's TM/4 + TN/4 vec4 reads feed TM*TN multiply-adds. Each output is summed by one thread in k
//   order, so every run gives the same bits.
// - COOPMAT (tensor cores, VK_NV_cooperative_matrix; f16 inputs): SG_M x SG_N subgroups (groups of 32
//   invocations when emulated), shared memory as f16 in the inputs' stored order, each group summing FM x FN
//   fragments of LM x LN (a shape the device lists for f16 x f16 + fp32) in fp32 accumulators. The hardware's
//   order of the sums within one fragment product is fixed, so every run on one device gives the same bits
//   too. The fragments are coopmat.glsl's; its COOP_EMULATE form (16 x 16 x 16, plain GLSL: the *_coop_emu
//   variants) lets devices without tensor cores test this kernel.
//! variant nn -DTRANS_A=0 -DTRANS_B=0
//! variant nt -DTRANS_A=0 -DTRANS_B=1
//! variant tn -DTRANS_A=1 -DTRANS_B=0
//! variant tt -DTRANS_A=1 -DTRANS_B=1
//! variant nn_f16 -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1
//! variant nt_f16 -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1
//! variant tn_f16 -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1
//! variant tt_f16 -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1
//! variant nn_f16_f32out -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1
//! variant nt_f16_f32out -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1
//! variant tn_f16_f32out -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1
//! variant tt_f16_f32out -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1
//! variant nn_bf16 -DTRANS_A=0 -DTRANS_B=0 -DBF16_IN=1 -DBF16_OUT=1
//! variant nt_bf16 -DTRANS_A=0 -DTRANS_B=1 -DBF16_IN=1 -DBF16_OUT=1
//! variant tn_bf16 -DTRANS_A=1 -DTRANS_B=0 -DBF16_IN=1 -DBF16_OUT=1
//! variant tt_bf16 -DTRANS_A=1 -DTRANS_B=1 -DBF16_IN=1 -DBF16_OUT=1
//! variant nn_bf16_f32out -DTRANS_A=0 -DTRANS_B=0 -DBF16_IN=1
//! variant nt_bf16_f32out -DTRANS_A=0 -DTRANS_B=1 -DBF16_IN=1
//! variant tn_bf16_f32out -DTRANS_A=1 -DTRANS_B=0 -DBF16_IN=1
//! variant tt_bf16_f32out -DTRANS_A=1 -DTRANS_B=1 -DBF16_IN=1
//! variant nn_f16_coop -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1
//! variant nt_f16_coop -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1
//! variant tn_f16_coop -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1
//! variant tt_f16_coop -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1
//! variant nn_f16_f32out_coop -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1 -DCOOPMAT=1
//! variant nt_f16_f32out_coop -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1 -DCOOPMAT=1
//! variant tn_f16_f32out_coop -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1 -DCOOPMAT=1
//! variant tt_f16_f32out_coop -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1 -DCOOPMAT=1
//! variant nn_f16_coop_emu -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant nt_f16_coop_emu -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant tn_f16_coop_emu -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant tt_f16_coop_emu -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1 -DF16_OUT=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant nn_f16_f32out_coop_emu -DTRANS_A=0 -DTRANS_B=0 -DF16_IN=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant nt_f16_f32out_coop_emu -DTRANS_A=0 -DTRANS_B=1 -DF16_IN=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant tn_f16_f32out_coop_emu -DTRANS_A=1 -DTRANS_B=0 -DF16_IN=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
//! variant tt_f16_f32out_coop_emu -DTRANS_A=1 -DTRANS_B=1 -DF16_IN=1 -DCOOPMAT=1 -DCOOP_EMULATE=1
#if F16_IN || F16_OUT
#include "types.glsl"
#elif BF16_IN || BF16_OUT
#define NO_FLOAT16 1
#include "types.glsl"
#endif

layout(constant_id = 0) const uint BK = 16;  // k slice
// Elements per load from A and from B: 1, 2 or 4, along the stored rows. The wrapper picks the widest that
// divides the stored row length and the binding skip, so a vector never straddles a row or the matrix's
// edge and its index is a whole number of vectors. This needs BK, BM, BN, LA and LB to be multiples of 4.
layout(constant_id = 1) const uint VA = 1;
layout(constant_id = 2) const uint VB = 1;
#if COOPMAT
layout(local_size_x_id = 3) in;
layout(constant_id = 3) const uint THREADS = 128;  // SG_M * SG_N subgroups of the device's fixed size, or of 32
layout(constant_id = 4) const uint SG_M = 2;       // groups along M
layout(constant_id = 5) const uint SG_N = 2;       // groups along N
layout(constant_id = 6) const uint FM = 2;         // fragments per group along M
layout(constant_id = 7) const uint FN = 2;         // fragments per group along N
layout(constant_id = 8) const uint LM = 16;        // the fragment shape; BK must be a multiple of LK
layout(constant_id = 9) const uint LN = 16;
layout(constant_id = 10) const uint LK = 16;
const uint BM = SG_M * FM * LM;
const uint BN = SG_N * FN * LN;
#include "coopmat.glsl"
#else
layout(local_size_x_id = 3, local_size_y_id = 4) in;
layout(constant_id = 3) const uint TX = 16;  // threads along N
layout(constant_id = 4) const uint TY = 16;  // threads along M
layout(constant_id = 5) const uint TM = 4;   // micro-tile rows, a multiple of 4
layout(constant_id = 6) const uint TN = 4;   // micro-tile columns, a multiple of 4
const uint BM = TY * TM;
const uint BN = TX * TN;
const uint THREADS = TX * TY;
#endif
const uint LA = BM * BK / THREADS;  // elements of each A slice that one thread loads: THREADS must divide BM*BK
const uint LB = BN * BK / THREADS;

#if F16_IN
#define IN1 float16_t
#define IN2 f16vec2
#define IN4 f16vec4
#elif BF16_IN
#define IN1 uint16_t
#define IN2 u16vec2
#define IN4 u16vec4
#else
#define IN1 float
#define IN2 vec2
#define IN4 vec4
#endif
// How shared memory holds an input value: as stored for the tensor cores, which multiply f16; as fp32 for
// the tiled kernel, widened exactly.
#if COOPMAT
#define STAGED float16_t
#define STAGED2 f16vec2
#define STAGED4 f16vec4
float16_t stage(float16_t v) { return v; }
#elif F16_IN
#define STAGED float
#define STAGED2 vec2
#define STAGED4 vec4
float stage(float16_t v) { return f16_to_f32_exact(v); }
#elif BF16_IN
#define STAGED float
#define STAGED2 vec2
#define STAGED4 vec4
float stage(uint16_t v) { return bf16_to_f32(v); }
#else
#define STAGED float
#define STAGED2 vec2
#define STAGED4 vec4
float stage(float v) { return v; }
#endif
STAGED2 stage(IN2 v) { return STAGED2(stage(v.x), stage(v.y)); }
STAGED4 stage(IN4 v) { return STAGED4(stage(v.x), stage(v.y), stage(v.z), stage(v.w)); }

// Each input is bound once and seen through three arrays, one per load width (VA and VB pick one).
layout(std430, binding = 0) readonly buffer BufA { IN1 a[]; };
layout(std430, binding = 0) readonly buffer BufA2 { IN2 a2[]; };
layout(std430, binding = 0) readonly buffer BufA4 { IN4 a4[]; };
layout(std430, binding = 1) readonly buffer BufB { IN1 b[]; };
layout(std430, binding = 1) readonly buffer BufB2 { IN2 b2[]; };
layout(std430, binding = 1) readonly buffer BufB4 { IN4 b4[]; };
#if F16_OUT
layout(std430, binding = 2) buffer BufC { float16_t c[]; };
float read_c(uint at) { return f16_to_f32_exact(c[at]); }
void write_c(uint at, float v) { c[at] = f32_to_f16_exact(v); }
#elif BF16_OUT
layout(std430, binding = 2) buffer BufC { uint16_t c[]; };
float read_c(uint at) { return bf16_to_f32(c[at]); }
void write_c(uint at, float v) { c[at] = f32_to_bf16(v); }
#else
layout(std430, binding = 2) buffer BufC { float c[]; };
float read_c(uint at) { return c[at]; }
void write_c(uint at, float v) { c[at] = v; }
#endif
layout(push_constant) uniform Push {
  uint M, N, K;
  uint batch_a, batch_b, batch_c;  // elements from one batch entry to the next; 0 shares one matrix
  uint accumulate;                 // 0: C = product, and C is never read (it may hold NaN)
  uint skip_a, skip_b, skip_c;     // elements before each matrix in its binding (views at any offset)
};

// C[m, n] = v, or C[m, n] += v, for (m, n) inside C.
void store_c(uint m, uint n, float v) {
  if (m >= M || n >= N) return;
  uint at = skip_c + gl_WorkGroupID.z * batch_c + m * N + n;
  write_c(at, accumulate != 0 ? read_c(at) + v : v);
}

STAGED next_a[LA];  // the next slice, loaded from memory while the current one is multiplied
STAGED next_b[LB];

// Where load v of a slice starts (m or n, k within the tile), numbering the slice's loads in memory order so
// that consecutive threads read consecutive addresses. Its V elements follow along the stored row.
uvec2 a_place(uint v) {
#if TRANS_A
  return uvec2(v % (BM / VA) * VA, v / (BM / VA));
#else
  return uvec2(v / (BK / VA), v % (BK / VA) * VA);
#endif
}
uvec2 b_place(uint v) {
#if TRANS_B
  return uvec2(v / (BK / VB), v % (BK / VB) * VB);
#else
  return uvec2(v % (BN / VB) * VB, v / (BN / VB));
#endif
}
// Element j of a load at p, as (m or n, k).
uvec2 a_step(uvec2 p, uint j) { return TRANS_A != 0 ? uvec2(p.x + j, p.y) : uvec2(p.x, p.y + j); }
uvec2 b_step(uvec2 p, uint j) { return TRANS_B != 0 ? uvec2(p.x, p.y + j) : uvec2(p.x + j, p.y); }

// The VA (VB) elements from (m, k) on. Outside the matrix, zeros: they add nothing to the sums, so edge
// tiles need no other case.
STAGED4 load_a(uint base, uint m, uint k) {
  if (m >= M || k >= K) return STAGED4(0.0);
  uint at = base + (TRANS_A != 0 ? k * M + m : m * K + k);
  if (VA == 4) return stage(a4[at / 4]);
  if (VA == 2) return STAGED4(stage(a2[at / 2]), 0.0, 0.0);
  return STAGED4(stage(a[at]), 0.0, 0.0, 0.0);
}
STAGED4 load_b(uint base, uint n, uint k) {
  if (n >= N || k >= K) return STAGED4(0.0);
  uint at = base + (TRANS_B != 0 ? n * K + k : k * N + n);
  if (VB == 4) return stage(b4[at / 4]);
  if (VB == 2) return STAGED4(stage(b2[at / 2]), 0.0, 0.0);
  return STAGED4(stage(b[at]), 0.0, 0.0, 0.0);
}

void load_slice(uint t, uvec2 origin, uint k0) {
  uint z = gl_WorkGroupID.z;
  for (uint i = 0; i < LA / VA; ++i) {
    uvec2 p = a_place(t + i * THREADS);
    STAGED4 v = load_a(skip_a + z * batch_a, origin.x + p.x, k0 + p.y);
    for (uint j = 0; j < VA; ++j) next_a[i * VA + j] = v[j];
  }
  for (uint i = 0; i < LB / VB; ++i) {
    uvec2 p = b_place(t + i * THREADS);
    STAGED4 v = load_b(skip_b + z * batch_b, origin.y + p.x, k0 + p.y);
    for (uint j = 0; j < VB; ++j) next_b[i * VB + j] = v[j];
  }
}

#if COOPMAT
// Shared slices keep the stored order, A as [BM][BK] ([BK][BM] when TRANS_A) and B as [BK][BN] ([BN][BK]
// when TRANS_B), and the fragment loads read transposed ones column-major. Rows are padded by 8 elements:
// fragment loads need 16-byte aligned rows, and the padding spreads a fragment's rows over the banks.
const uint SA = (TRANS_A != 0 ? BM : BK) + 8;
const uint SB = (TRANS_B != 0 ? BK : BN) + 8;
shared float16_t As[(TRANS_A != 0 ? BK : BM) * SA];
shared float16_t Bs[(TRANS_B != 0 ? BN : BK) * SB];
uint a_shared(uint m, uint k) { return TRANS_A != 0 ? k * SA + m : m * SA + k; }
uint b_shared(uint k, uint n) { return TRANS_B != 0 ? n * SB + k : k * SB + n; }
void put_a(uvec2 p, float16_t v) { As[a_shared(p.x, p.y)] = v; }
void put_b(uvec2 p, float16_t v) { Bs[b_shared(p.y, p.x)] = v; }

// Each group owns FM x FN fragments of the block; fragment (i, j) covers rows i*LM.. and columns j*LN.. of the
// group's FM*LM x FN*LN tile. Storing C goes through one LM x LN scratch per group, in fp32.
COOP_ACC acc[FM * FN];
shared float Cs[SG_M * SG_N * LM * LN];
// Where group g's tile starts in the block, as (m, n).
uvec2 tile_of(uint g) { return uvec2(g / SG_N * FM * LM, g % SG_N * FN * LN); }

void clear_acc() {
  FRAG_LOOP for (uint f = 0; f < FM * FN; ++f) acc[f] = coop_zero();
}

// Every fragment call is reached by whole groups: the loops are bounded by constants.
void multiply_slice() {
  const uvec2 tile = tile_of(COOP_GROUP);
  FRAG_LOOP for (uint k = 0; k < BK; k += LK) {
    COOP_A fa[FM];
    FRAG_LOOP for (uint i = 0; i < FM; ++i) {
      COOP_LOAD(fa[i], As, a_shared(tile.x + i * LM, k), SA, TRANS_A != 0);
    }
    FRAG_LOOP for (uint j = 0; j < FN; ++j) {
      COOP_B fb;
      COOP_LOAD(fb, Bs, b_shared(k, tile.y + j * LN), SB, TRANS_B != 0);
      FRAG_LOOP for (uint i = 0; i < FM; ++i) acc[i * FN + j] = coop_muladd(fa[i], fb, acc[i * FN + j]);
    }
  }
}

// Fragment by fragment: every group stores its fragment f to its scratch, then the whole workgroup writes all
// of them to C (bounds, accumulate and f16 rounding are per element, which fragments cannot do).
void store_block(uvec2 origin) {
  const uint t = gl_LocalInvocationIndex, size = LM * LN;
  FRAG_LOOP for (uint f = 0; f < FM * FN; ++f) {
    COOP_STORE(acc[f], Cs, COOP_GROUP * size, LN);
    barrier();
    for (uint e = t; e < SG_M * SG_N * size; e += THREADS) {
      uvec2 at = origin + tile_of(e / size) + uvec2(f / FN * LM + e % size / LN, f % FN * LN + e % LN);
      store_c(at.x, at.y, Cs[e]);
    }
    barrier();  // all is read before the next fragment overwrites the scratch
  }
}
#else
// Shared rows are padded by one vec4, so that storing a slice whose memory order runs along k (A stored
// [M,K], B stored [N,K]) spreads consecutive threads over distinct banks.
const uint SA = BM / 4 + 1;
const uint SB = BN / 4 + 1;
shared vec4 As[BK * SA];  // As[k][m / 4][m % 4]
shared vec4 Bs[BK * SB];  // Bs[k][n / 4][n % 4]
void put_a(uvec2 p, float v) { As[p.y * SA + p.x / 4][p.x % 4] = v; }
void put_b(uvec2 p, float v) { Bs[p.y * SB + p.x / 4][p.x % 4] = v; }

vec4 acc[TM * TN / 4];  // acc[i][j]: row i of the micro-tile, columns 4j..4j+3

void clear_acc() {
  for (uint i = 0; i < TM * TN / 4; ++i) acc[i] = vec4(0.0);
}

void multiply_slice() {
  const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  for (uint k = 0; k < BK; ++k) {
    vec4 av[TM / 4], bv[TN / 4];
    for (uint i = 0; i < TM / 4; ++i) av[i] = As[k * SA + ty + i * TY];
    for (uint j = 0; j < TN / 4; ++j) bv[j] = Bs[k * SB + tx + j * TX];
    for (uint i = 0; i < TM; ++i)
      for (uint j = 0; j < TN / 4; ++j) acc[i * (TN / 4) + j] += av[i / 4][i % 4] * bv[j];
  }
}

void store_block(uvec2 origin) {
  const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  for (uint i = 0; i < TM; ++i) {
    uint m = origin.x + (ty + (i / 4) * TY) * 4 + i % 4;
    for (uint j = 0; j < TN / 4; ++j) {
      uint n = origin.y + (tx + j * TX) * 4;
      for (uint q = 0; q < 4; ++q) store_c(m, n + q, acc[i * (TN / 4) + j][q]);
    }
  }
}
#endif

void main() {
  const uint t = gl_LocalInvocationIndex;
  const uvec2 origin = uvec2(gl_WorkGroupID.y * BM, gl_WorkGroupID.x * BN);  // (m, n) of the block

  clear_acc();
  load_slice(t, origin, 0);
  for (uint k0 = 0; k0 < K; k0 += BK) {
    for (uint i = 0; i < LA / VA; ++i)
      for (uint j = 0; j < VA; ++j) put_a(a_step(a_place(t + i * THREADS), j), next_a[i * VA + j]);
    for (uint i = 0; i < LB / VB; ++i)
      for (uint j = 0; j < VB; ++j) put_b(b_step(b_place(t + i * THREADS), j), next_b[i * VB + j]);
    barrier();
    if (k0 + BK < K) load_slice(t, origin, k0 + BK);
    multiply_slice();
    barrier();  // the slice is read by all before the next one overwrites it
  }
  store_block(origin);
}
