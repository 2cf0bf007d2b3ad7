#version 450
// Writes one bit pattern to every element: any dtype, by element width.
//! variant b32 -DELEM=uint
//! variant b16 -DELEM=uint16_t -DSTORE16
#ifdef STORE16
#include "types.glsl"
#endif
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) writeonly buffer Out { ELEM data[]; };
layout(push_constant) uniform Push { uint n; uint pattern; };

void main() {
  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) data[i] = ELEM(pattern);
}
