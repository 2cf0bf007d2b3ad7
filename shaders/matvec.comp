#version 450
// Y = X·Wᵀ for a few rows of X, as decoding needs: X [M, K], W [N, K] (a linear layer's weight), Y [M, N], or
// Y += X·Wᵀ with `accumulate`. X and W are both f32 or both f16 (-DF16=1: half the bytes of weights to read,
// which is what decoding time is made of), Y is f32; sums in fp32. A tiled matmul would pad M to its block and
// do 64x the work.
// Each output is summed in one fixed order, the same bits every run. Two ways to split the work:
//  split_k (GPUs): a workgroup of WG threads computes COLS columns of Y for ROWS rows of X. Each thread sums a
//    strided slice of k (k = tid, tid + WG, ...: neighbouring threads read neighbouring elements of a W row,
//    which coalesces) for its ROWS x COLS outputs; the WG partial sums of each output are then added in a fixed
//    tree order through shared memory.
//  by_column (CPU devices, which run a workgroup's threads as SIMD lanes): each thread walks whole W rows for
//    COLS columns of Y and ROWS rows of X, 16 bytes at a time (a BLOCK: 4 f32 or 8 f16) where K and the skips
//    allow, else one element at a time; no shared memory, no barriers. lavapipe loads a lane's data component
//    by component, so f16 is read as uvec4s of packed pairs: 8 elements for the 4 loads of 4 f32.
// Each W row is read once per ROWS rows of X, which is what decoding time is made of.
//! variant split_k -DBY_COLUMN=0 -DF16=0
//! variant by_column -DBY_COLUMN=1 -DF16=0
//! variant split_k_f16 -DBY_COLUMN=0 -DF16=1
//! variant by_column_f16 -DBY_COLUMN=1 -DF16=1
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;   // split_k: a power of two, at least ROWS * COLS
layout(constant_id = 1) const uint ROWS = 1;  // rows of X per workgroup (gl_WorkGroupID.y picks them)
layout(constant_id = 2) const uint COLS = 4;  // columns of Y per workgroup (split_k) or thread (by_column)
layout(constant_id = 3) const bool BLOCKS = false;  // by_column: 16-byte loads (K and the skips allow them)
const uint OUTS = ROWS * COLS;

#if F16
#include "types.glsl"
// Widening f16 is exact, so the device's own conversion serves (save that a device may flush f16 subnormals,
// below 2^-14, to zero): on lavapipe it is one instruction where types.glsl's integer one takes a dozen, and
// f16 ran 1.9x as fast as f32 rather than 1.3x.
#define ACT float16_t
#define LOAD(h) float(h)
#define BLOCK mat2x4
const uint PER_BLOCK = 8;
layout(std430, binding = 0) readonly buffer XB { uvec4 xb[]; };
layout(std430, binding = 1) readonly buffer WB { uvec4 wb[]; };
BLOCK widen(uvec4 u) {
  return BLOCK(vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)), vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w)));
}
float block_dot(BLOCK a, BLOCK b) { return dot(a[0], b[0]) + dot(a[1], b[1]); }
#else
#define ACT float
#define LOAD(v) (v)
#define BLOCK vec4
const uint PER_BLOCK = 4;
layout(std430, binding = 0) readonly buffer XB { vec4 xb[]; };
layout(std430, binding = 1) readonly buffer WB { vec4 wb[]; };
BLOCK widen(vec4 v) { return v; }
float block_dot(BLOCK a, BLOCK b) { return dot(a, b); }
#endif
layout(std430, binding = 0) readonly buffer X { ACT x[]; };
layout(std430, binding = 1) readonly buffer W { ACT w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform Push { uint M, N, K, accumulate, x_skip, w_skip, y_skip; };

void store(uint m, uint n, float v) {
  const uint at = y_skip + m * N + n;
  y[at] = accumulate != 0 ? y[at] + v : v;
}

#if BY_COLUMN
void main() {
  const uint n0 = gl_GlobalInvocationID.x * COLS, m0 = gl_WorkGroupID.y * ROWS;
  if (n0 >= N) return;
  const uint rows = min(ROWS, M - m0), cols = min(COLS, N - n0);
  float acc[OUTS];
  for (uint o = 0; o < OUTS; ++o) acc[o] = 0.0;
  if (BLOCKS) {
    [[dont_unroll]] for (uint k = 0; k < K; k += PER_BLOCK) {
      BLOCK xk[ROWS];
      for (uint r = 0; r < ROWS; ++r)
        xk[r] = r < rows ? widen(xb[(x_skip + (m0 + r) * K + k) / PER_BLOCK]) : BLOCK(0.0);
      for (uint c = 0; c < COLS; ++c) {
        const BLOCK wk = c < cols ? widen(wb[(w_skip + (n0 + c) * K + k) / PER_BLOCK]) : BLOCK(0.0);
        for (uint r = 0; r < ROWS; ++r) acc[r * COLS + c] += block_dot(xk[r], wk);
      }
    }
  } else {
    [[dont_unroll]] for (uint k = 0; k < K; ++k) {
      float xk[ROWS];
      for (uint r = 0; r < ROWS; ++r) xk[r] = r < rows ? LOAD(x[x_skip + (m0 + r) * K + k]) : 0.0;
      for (uint c = 0; c < COLS; ++c) {
        const float wk = c < cols ? LOAD(w[w_skip + (n0 + c) * K + k]) : 0.0;
        for (uint r = 0; r < ROWS; ++r) acc[r * COLS + c] += xk[r] * wk;
      }
    }
  }
  for (uint r = 0; r < rows; ++r)
    for (uint c = 0; c < cols; ++c) store(m0 + r, n0 + c, acc[r * COLS + c]);
}
#else
shared float part[OUTS * WG];  // part[o * WG + thread]

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint n0 = gl_WorkGroupID.x * COLS, m0 = gl_WorkGroupID.y * ROWS;
  const uint rows = min(ROWS, M - m0), cols = min(COLS, N - n0);
  float acc[OUTS];
  for (uint o = 0; o < OUTS; ++o) acc[o] = 0.0;
  for (uint k = tid; k < K; k += WG) {
    float xk[ROWS];
    for (uint r = 0; r < ROWS; ++r) xk[r] = r < rows ? LOAD(x[x_skip + (m0 + r) * K + k]) : 0.0;
    for (uint c = 0; c < cols; ++c) {
      float wk = LOAD(w[w_skip + (n0 + c) * K + k]);
      for (uint r = 0; r < ROWS; ++r) acc[r * COLS + c] += xk[r] * wk;
    }
  }
  for (uint o = 0; o < OUTS; ++o) part[o * WG + tid] = acc[o];
  barrier();
  [[dont_unroll]] for (uint s = WG / 2; s > 0; s /= 2) {
    if (tid < s)
      for (uint o = 0; o < OUTS; ++o) part[o * WG + tid] += part[o * WG + tid + s];
    barrier();
  }
  if (tid < OUTS) {
    const uint r = tid / COLS, c = tid % COLS;
    if (r < rows && c < cols) store(m0 + r, n0 + c, part[tid * WG]);
  }
}
#endif
