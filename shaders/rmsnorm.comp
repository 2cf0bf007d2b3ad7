#version 450
// RMSNorm over rows of C elements, y = x * rstd * w with rstd = 1 / sqrt(mean(x²) + eps), and its backward.
// Activations (x, y, dy, dx) are f32, f16 or bf16 (ACT_TYPE, storage.glsl); w, dw, rstd and the dw partials
// are always f32, and all arithmetic is fp32. Sums over a row run in a fixed order (each invocation its
// strided share, then a shared-memory tree), and dw is summed per block of rows and then over blocks in order,
// so every run gives the same bits. Each binding of a row-major tensor starts at an aligned offset `*_skip` elements below it.
//
// forward:  one workgroup per row (grid-stride over rows): y, and rstd for the backward.
// backward: workgroup g takes the rows [g * slice, (g + 1) * slice): dx for each, and the block's dw partial
//           sum(dy * x * rstd) into row block0 + g of the partials.
// dw_sum:   dw[c] (+)= the partials of column c, summed over blocks in order.
// The workgroup size must be a power of two.
//! variant forward_f32 -DFORWARD=1 -DACT_TYPE=0
//! variant forward_f16 -DFORWARD=1 -DACT_TYPE=1
//! variant forward_bf16 -DFORWARD=1 -DACT_TYPE=2
//! variant backward_f32 -DBACKWARD=1 -DACT_TYPE=0
//! variant backward_f16 -DBACKWARD=1 -DACT_TYPE=1
//! variant backward_bf16 -DBACKWARD=1 -DACT_TYPE=2
//! variant dw_sum -DDW_SUM=1 -DACT_TYPE=0
#include "storage.glsl"
layout(local_size_x_id = 0) in;
const uint WG = gl_WorkGroupSize.x;

shared float tree[WG];

// The workgroup's sum of one value per invocation, in a fixed order; every invocation gets it.
float workgroup_sum(float v) {
  uint t = gl_LocalInvocationID.x;
  tree[t] = v;
  barrier();
  for (uint h = WG / 2; h > 0; h /= 2) {
    if (t < h) tree[t] += tree[t + h];
    barrier();
  }
  float total = tree[0];
  barrier();  // all have read tree[0] before the next call overwrites it
  return total;
}

#ifdef FORWARD
layout(std430, binding = 0) readonly buffer X { ACT x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) writeonly buffer Y { ACT y[]; };
layout(std430, binding = 3) writeonly buffer Rstd { float rstd[]; };
layout(push_constant) uniform Push { uint rows, C; float eps; uint x_skip, w_skip, y_skip, r_skip; };

void main() {
  uint t = gl_LocalInvocationID.x;
  for (uint row = gl_WorkGroupID.x; row < rows; row += gl_NumWorkGroups.x) {
    uint xr = x_skip + row * C, yr = y_skip + row * C;
    float squares = 0.0;
    for (uint c = t; c < C; c += WG) {
      float v = LOAD(x[xr + c]);
      squares += v * v;
    }
    float r = inversesqrt(workgroup_sum(squares) / float(C) + eps);
    if (t == 0) rstd[r_skip + row] = r;
    for (uint c = t; c < C; c += WG) y[yr + c] = STORE(LOAD(x[xr + c]) * r * w[w_skip + c]);
  }
}
#endif

#ifdef BACKWARD
layout(std430, binding = 0) readonly buffer X { ACT x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer Rstd { float rstd[]; };
layout(std430, binding = 3) readonly buffer DY { ACT dy[]; };
layout(std430, binding = 4) writeonly buffer DX { ACT dx[]; };
layout(std430, binding = 5) buffer Partial { float partial[]; };  // [blocks, C]
layout(push_constant) uniform Push {
  uint rows, C, slice, block0;
  uint x_skip, w_skip, r_skip, dy_skip, dx_skip, p_skip;
};

// With s = sum_c dy[c] w[c] x[c] over the row, dx = rstd * (w * dy - x * rstd² * s / C).
void main() {
  uint t = gl_LocalInvocationID.x;
  uint begin = gl_WorkGroupID.x * slice, end = min(begin + slice, rows);
  uint pr = p_skip + (block0 + gl_WorkGroupID.x) * C;
  for (uint row = begin; row < end; ++row) {
    uint xr = x_skip + row * C, dyr = dy_skip + row * C, dxr = dx_skip + row * C;
    float r = rstd[r_skip + row];
    float s = 0.0;
    for (uint c = t; c < C; c += WG) s += LOAD(dy[dyr + c]) * w[w_skip + c] * LOAD(x[xr + c]);
    float k = r * r * workgroup_sum(s) / float(C);
    for (uint c = t; c < C; c += WG) {
      float g = LOAD(dy[dyr + c]), v = LOAD(x[xr + c]);
      dx[dxr + c] = STORE(r * (w[w_skip + c] * g - v * k));
      // Only this invocation touches partial[pr + c], so it reads back its own earlier write.
      partial[pr + c] = (row == begin ? 0.0 : partial[pr + c]) + g * v * r;
    }
  }
}
#endif

#ifdef DW_SUM
layout(std430, binding = 0) readonly buffer Partial { float partial[]; };
layout(std430, binding = 1) buffer DW { float dw[]; };
layout(push_constant) uniform Push { uint C, blocks, accumulate, p_skip, dw_skip; };

void main() {
  uint stride = gl_NumWorkGroups.x * WG;
  for (uint c = gl_GlobalInvocationID.x; c < C; c += stride) {
    float sum = 0.0;
    for (uint b = 0; b < blocks; ++b) sum += partial[p_skip + b * C + c];
    dw[dw_skip + c] = accumulate != 0 ? dw[dw_skip + c] + sum : sum;
  }
}
#endif
