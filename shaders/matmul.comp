#version 450
// C = op(A)·op(B), or C += op(A)·op(B): fp32, row-major, one matrix product per gl_WorkGroupID.z.
// op(A) is A stored [M,K], or A stored [K,M] when TRANS_A; op(B) is B stored [K,N], or B stored [N,K] when
// TRANS_B. A linear layer's three products: Y = X·Wᵀ is nt, dX = dY·W is nn, dW += dYᵀ·X is tn.
//
// A workgroup of TX x TY threads computes a BM x BN block of C, walking K in slices of BK that pass through
// shared memory; each thread sums a TM x TN micro-tile in registers. A thread's rows (columns) come in runs
// of 4 spaced 4*TY (4*TX) apart, so that in the inner loop neighbouring threads read adjacent or identical
// vec4s of shared memory (no bank conflicts), and per k a thread's TM/4 + TN/4 vec4 reads feed TM*TN
// multiply-adds. Each output is summed by one thread in k order, so every run gives the same bits.
//! variant nn -DTRANS_A=0 -DTRANS_B=0
//! variant nt -DTRANS_A=0 -DTRANS_B=1
//! variant tn -DTRANS_A=1 -DTRANS_B=0
//! variant tt -DTRANS_A=1 -DTRANS_B=1

layout(local_size_x_id = 0, local_size_y_id = 1) in;
layout(constant_id = 0) const uint TX = 16;  // threads along N
layout(constant_id = 1) const uint TY = 16;  // threads along M
layout(constant_id = 2) const uint TM = 4;   // micro-tile rows, a multiple of 4
layout(constant_id = 3) const uint TN = 4;   // micro-tile columns, a multiple of 4
layout(constant_id = 4) const uint BK = 16;  // THREADS must divide BM*BK and BN*BK
const uint BM = TY * TM;
const uint BN = TX * TN;
const uint THREADS = TX * TY;
const uint LA = BM * BK / THREADS;  // elements of each A slice that one thread loads
const uint LB = BN * BK / THREADS;
// Shared rows are padded by one vec4, so that storing a slice whose memory order runs along k (A stored
// [M,K], B stored [N,K]) spreads consecutive threads over distinct banks.
const uint SA = BM / 4 + 1;
const uint SB = BN / 4 + 1;

layout(std430, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, binding = 1) readonly buffer BufB { float b[]; };
layout(std430, binding = 2) buffer BufC { float c[]; };
layout(push_constant) uniform Push {
  uint M, N, K;
  uint batch_a, batch_b, batch_c;  // elements from one batch entry to the next; 0 shares one matrix
  uint accumulate;                 // 0: C = product, and C is never read (it may hold NaN)
};

shared vec4 As[BK * SA];  // As[k][m / 4][m % 4]
shared vec4 Bs[BK * SB];  // Bs[k][n / 4][n % 4]
float next_a[LA];         // the next slice, loaded from memory while the current one is multiplied
float next_b[LB];

// Where element e of a slice sits (m or n, k within the tile), numbering the slice in memory order so
// that consecutive threads read consecutive addresses.
uvec2 a_place(uint e) {
#if TRANS_A
  return uvec2(e % BM, e / BM);
#else
  return uvec2(e / BK, e % BK);
#endif
}
uvec2 b_place(uint e) {
#if TRANS_B
  return uvec2(e / BK, e % BK);
#else
  return uvec2(e % BN, e / BN);
#endif
}

// Outside the matrix, zeros: they add nothing to the sums, so edge tiles need no other case.
float load_a(uint base, uint m, uint k) {
  if (m >= M || k >= K) return 0.0;
#if TRANS_A
  return a[base + k * M + m];
#else
  return a[base + m * K + k];
#endif
}
float load_b(uint base, uint n, uint k) {
  if (n >= N || k >= K) return 0.0;
#if TRANS_B
  return b[base + n * K + k];
#else
  return b[base + k * N + n];
#endif
}

void load_slice(uint t, uvec2 origin, uint k0) {
  uint z = gl_WorkGroupID.z;
  for (uint i = 0; i < LA; ++i) {
    uvec2 p = a_place(t + i * THREADS);
    next_a[i] = load_a(z * batch_a, origin.x + p.x, k0 + p.y);
  }
  for (uint i = 0; i < LB; ++i) {
    uvec2 p = b_place(t + i * THREADS);
    next_b[i] = load_b(z * batch_b, origin.y + p.x, k0 + p.y);
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
    for (uint i = 0; i < LA; ++i) {
      uvec2 p = a_place(t + i * THREADS);
      As[p.y * SA + p.x / 4][p.x % 4] = next_a[i];
    }
    for (uint i = 0; i < LB; ++i) {
      uvec2 p = b_place(t + i * THREADS);
      Bs[p.y * SB + p.x / 4][p.x % 4] = next_b[i];
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

  const uint base = gl_WorkGroupID.z * batch_c;
  for (uint i = 0; i < TM; ++i) {
    uint m = origin.x + (ty + (i / 4) * TY) * 4 + i % 4;
    if (m >= M) break;  // rows only grow with i
    for (uint j = 0; j < TN / 4; ++j) {
      uint n = origin.y + (tx + j * TX) * 4;
      for (uint q = 0; q < 4 && n + q < N; ++q) {
        uint at = base + m * N + n + q;
        c[at] = accumulate != 0 ? c[at] + acc[i * (TN / 4) + j][q] : acc[i * (TN / 4) + j][q];
      }
    }
  }
}
