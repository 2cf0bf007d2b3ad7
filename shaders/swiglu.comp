#version 450
// SwiGLU, the gate of MiniMind's feed-forward block, over `rows` rows of `cols` elements:
//   forward:  h = silu(gate) * up, where silu(g) = g * sigmoid(g)
//   backward: dgate = dh * up * silu'(g), dup = dh * silu(g), where silu'(g) = s * (1 + g * (1 - s)), s = sigmoid(g)
// Element (r, c) of gate, up, dgate and dup sits at skip + r * ld + c: rows of their own (ld = cols), or the
// two halves of one fused row [gate | up] (ld = 2 * cols) as one matmul against stacked weights writes it.
// h and dh are plain [rows, cols]. Storage is f32, f16 or bf16 (ACT_TYPE, storage.glsl); arithmetic is fp32.
// The skips place each tensor inside a binding that starts at an aligned offset below it.
//! variant forward_f32 -DFORWARD -DACT_TYPE=0
//! variant forward_f16 -DFORWARD -DACT_TYPE=1
//! variant forward_bf16 -DFORWARD -DACT_TYPE=2
//! variant backward_f32 -DBACKWARD -DACT_TYPE=0
//! variant backward_f16 -DBACKWARD -DACT_TYPE=1
//! variant backward_bf16 -DBACKWARD -DACT_TYPE=2
#include "storage.glsl"
layout(local_size_x_id = 0) in;

layout(std430, binding = 0) readonly buffer Gate { ACT gate[]; };
layout(std430, binding = 1) readonly buffer Up { ACT up[]; };
#ifdef FORWARD
layout(std430, binding = 2) writeonly buffer H { ACT h[]; };
#else
layout(std430, binding = 2) readonly buffer DH { ACT dh[]; };
layout(std430, binding = 3) writeonly buffer DGate { ACT dgate[]; };
layout(std430, binding = 4) writeonly buffer DUp { ACT dup[]; };
#endif
layout(push_constant) uniform Push {
  uint rows, cols;
  uint ld;                        // row stride of gate, up, dgate and dup
  uint gate_skip, up_skip;
  uint h_skip;                    // of h (forward) or dh (backward)
  uint dgate_skip, dup_skip;      // backward only
};

void main() {
  uint n = rows * cols, stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
    uint r = i / cols, at = r * ld + (i - r * cols);
    float g = LOAD(gate[gate_skip + at]), u = LOAD(up[up_skip + at]);
    float s = 1.0 / (1.0 + exp(-g));  // exp overflows to inf for very negative g, and s goes to 0 as it should
#ifdef FORWARD
    h[h_skip + i] = STORE(g * s * u);
#else
    float d = LOAD(dh[h_skip + i]);
    dgate[dgate_skip + at] = STORE(d * u * s * (1.0 + g * (1.0 - s)));
    dup[dup_skip + at] = STORE(d * g * s);
#endif
  }
}
