#version 450
// C = op(A)·op(B), or C += op(A)·op(B): row-major, one matrix product per gl_WorkGroupID.z, arithmetic and
// sums in fp32 whatever the storage. op(A) is A stored [M,K], or A stored [K,M] when TRANS_A; op(B) is B
// stored [K,N], or B stored [N,K] when TRANS_B. A linear layer's three products: Y = X·Wᵀ is nt, dX = dY·W
// is nn, dW += dYᵀ·X is tn. Storage: fp32 throughout; or A and B f16 (F16_IN) with C f16 (F16_OUT), the
// mixed-precision forward and backward, or with C fp32, for weight gradients summed into fp32. An f16
// product is rounded once, when C is stored (C += product: once, after adding the old C).
//
// A workgroup of TX x TY threads computes a BM x BN block of C, walking K in slices of BK that pass through
// shared memory (as fp32); each thread sums a TM x TN micro-tile in registers. A thread's rows (columns)
// come in runs of 4 spaced 4*TY (4*TX) apart, so that in the inner loop neighbouring threads read adjacent
// or identical vec4s of shared memory (no bank conflicts), and per k a thread's TM/4 + TN/4 vec4 reads feed
// TM*TN multiply-adds. Each output is summed by one thread in k order, so every run gives the same bits.
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
#if F16_IN || F16_OUT
#include "types.glsl"
#endif

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const uint TX = 16;  // threads along N
layout(constant_id = 1) const uint TY = 16;  // threads along M
layout(constant_id = 2) const uint TM = 4;   // micro-tile rows, a multiple of 4
layout(constant_id = 3) const uint TN = 4;   // micro-tile columns, a multiple of 4
layout(constant_id = 4) const uint BK = 16;  // THREADS must divide BM*BK and BN*BK
// Elements per load from A and from B: 1, 2 or 4, along the stored rows. The wrapper picks the widest that
// divides the stored row length and the binding skip, so a vector never straddles a row or the matrix's
// edge and its index is a whole number of vectors. This needs BK, BM, BN, LA and LB to be multiples of 4.
layout(constant_id = 5) const uint VA = 1;
layout(constant_id = 6) const uint VB = 1;
const uint BM = TY * TM;
const uint BN = TX * TN;
const uint THREADS = TX * TY;
const uint LA = BM * BK / THREADS;  // elements of each A slice that one thread loads
const uint LB = BN * BK / THREADS;
// Shared rows are padded by one vec4, so that storing a slice whose memory order runs along k (A stored
// [M,K], B stored [N,K]) spreads consecutive threads over distinct banks.
const uint SA = BM / 4 + 1;
const uint SB = BN / 4 + 1;

#if F16_IN
#define IN1 float16_t
#define IN2 f16vec2
#define IN4 f16vec4
float widen(float16_t v) { return f16_to_f32_exact(v); }
vec2 widen(f16vec2 v) { return vec2(widen(v.x), widen(v.y)); }
vec4 widen(f16vec4 v) { return vec4(widen(v.x), widen(v.y), widen(v.z), widen(v.w)); }
#else
#define IN1 float
#define IN2 vec2
#define IN4 vec4
float widen(float v) { return v; }
vec2 widen(vec2 v) { return v; }
vec4 widen(vec4 v) { return v; }
#endif
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

shared vec4 As[BK * SA];  // As[k][m / 4][m % 4]
shared vec4 Bs[BK * SB];  // Bs[k][n / 4][n % 4]
float next_a[LA];         // the next slice, loaded from memory while the current one is multiplied
float next_b[LB];

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

// The VA (VB) elements from (m, k) on, as fp32. Outside the matrix, zeros: they add nothing to the sums, so
// edge tiles need no other case.
vec4 load_a(uint base, uint m, uint k) {
  if (m >= M || k >= K) return vec4(0.0);
  uint at = base + (TRANS_A != 0 ? k * M + m : m * K + k);
  if (VA == 4) return widen(a4[at / 4]);
  if (VA == 2) return vec4(widen(a2[at / 2]), 0.0, 0.0);
  return vec4(widen(a[at]), 0.0, 0.0, 0.0);
}
vec4 load_b(uint base, uint n, uint k) {
  if (n >= N || k >= K) return vec4(0.0);
  uint at = base + (TRANS_B != 0 ? n * K + k : k * N + n);
  if (VB == 4) return widen(b4[at / 4]);
  if (VB == 2) return vec4(widen(b2[at / 2]), 0.0, 0.0);
  return vec4(widen(b[at]), 0.0, 0.0, 0.0);
}

void load_slice(uint t, uvec2 origin, uint k0) {
  uint z = gl_WorkGroupID.z;
  for (uint i = 0; i < LA / VA; ++i) {
    uvec2 p = a_place(t + i * THREADS);
    vec4 v = load_a(skip_a + z * batch_a, origin.x + p.x, k0 + p.y);
    for (uint j = 0; j < VA; ++j) next_a[i * VA + j] = v[j];
  }
  for (uint i = 0; i < LB / VB; ++i) {
    uvec2 p = b_place(t + i * THREADS);
    vec4 v = load_b(skip_b + z * batch_b, origin.y + p.x, k0 + p.y);
    for (uint j = 0; j < VB; ++j) next_b[i * VB + j] = v[j];
  }
}

void main() {
  const uint t = gl_LocalInvocationIndex;
  const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  const uvec2 origin = uvec2(gl_WorkGroupID.y * BM, gl_WorkGroupID.x * BN);  // (m, n) of the block

  vec4 acc[TM * TN / 4];  // acc[i][j]: row i of the micro-tile, columns 4j..4j+3
  for (uint i = 0; i < TM * TN / 4; ++i) acc[i] = vec4(0.0);

  load_slice(t, origin, 0);
  for (uint k0 = 0; k0 < K; k0 += BK) {
    for (uint i = 0; i < LA / VA; ++i)
      for (uint j = 0; j < VA; ++j) {
        uvec2 p = a_step(a_place(t + i * THREADS), j);
        As[p.y * SA + p.x / 4][p.x % 4] = next_a[i * VA + j];
      }
    for (uint i = 0; i < LB / VB; ++i)
      for (uint j = 0; j < VB; ++j) {
        uvec2 p = b_step(b_place(t + i * THREADS), j);
        Bs[p.y * SB + p.x / 4][p.x % 4] = next_b[i * VB + j];
      }
    barrier();
    if (k0 + BK < K) load_slice(t, origin, k0 + BK);
    for (uint k = 0; k < BK; ++k) {
      vec4 av[TM / 4], bv[TN / 4];
      for (uint i = 0; i < TM / 4; ++i) av[i] = As[k * SA + ty + i * TY];
      for (uint j = 0; j < TN / 4; ++j) bv[j] = Bs[k * SB + tx + j * TX];
      for (uint i = 0; i < TM; ++i)
        for (uint j = 0; j < TN / 4; ++j) acc[i * (TN / 4) + j] += av[i / 4][i % 4] * bv[j];
    }
    barrier();  // the slice is read by all before the next one overwrites it
  }

  const uint base = skip_c + gl_WorkGroupID.z * batch_c;
  for (uint i = 0; i < TM; ++i) {
    uint m = origin.x + (ty + (i / 4) * TY) * 4 + i % 4;
    if (m >= M) break;  // rows only grow with i
    for (uint j = 0; j < TN / 4; ++j) {
      uint n = origin.y + (tx + j * TX) * 4;
      for (uint q = 0; q < 4 && n + q < N; ++q) {
        uint at = base + m * N + n + q;
        float v = acc[i * (TN / 4) + j][q];
        write_c(at, accumulate != 0 ? read_c(at) + v : v);
      }
    }
  }
}
