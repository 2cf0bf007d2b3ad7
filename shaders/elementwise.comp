#version 450
// Elementwise fp32 ops over n elements, grid-stride. The output may be the very same range as an input
// (in place): each element is read and then written by one invocation only.
//! variant add -DADD
//! variant scale -DSCALE
layout(local_size_x_id = 0) in;

#ifdef ADD
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push { uint n; };
#define VALUE(i) (a[i] + b[i])
#endif

#ifdef SCALE
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push { uint n; float alpha; };
#define VALUE(i) (alpha * x[i])
#endif

void main() {
  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) o[i] = VALUE(i);
}
