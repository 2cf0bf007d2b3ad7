#version 450
// Elementwise ops over n elements, grid-stride. The output may be the very same range as an input
// (in place): each element is read and then written by one invocation only. Storage is fp32, or for add f16
// or bf16 (ACT_TYPE, storage.glsl: the mixed path's residual stream), the arithmetic fp32 either way. Each
// binding starts at the aligned offset at or below its tensor; the skips say how many elements before it.
//! variant add -DADD -DACT_TYPE=0
//! variant add_f16 -DADD -DACT_TYPE=1
//! variant add_bf16 -DADD -DACT_TYPE=2
//! variant scale -DSCALE -DACT_TYPE=0
#include "storage.glsl"
layout(local_size_x_id = 0) in;

#ifdef ADD
layout(std430, binding = 0) readonly buffer A { ACT a[]; };
layout(std430, binding = 1) readonly buffer B { ACT b[]; };
layout(std430, binding = 2) writeonly buffer Out { ACT o[]; };
#define VALUE(i) STORE(LOAD(a[skip_in0 + i]) + LOAD(b[skip_in1 + i]))
#endif

#ifdef SCALE
layout(std430, binding = 0) readonly buffer X { ACT x[]; };
layout(std430, binding = 1) writeonly buffer Out { ACT o[]; };
#define VALUE(i) STORE(alpha * LOAD(x[skip_in0 + i]))
#endif

layout(push_constant) uniform Push { uint n, skip_in0, skip_in1, skip_out; float alpha; };

void main() {
  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) o[skip_out + i] = VALUE(i);
}
