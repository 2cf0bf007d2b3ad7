#version 450
// Strided 2D copy, dst[dst_skip + r*dst_ld + c] = src[src_skip + r*src_ld + c] for r < rows, c < cols:
// bit patterns, any dtype by element width. The skips place the region inside bindings that start at an
// aligned offset below it.
//! variant b32 -DELEM=uint
//! variant b16 -DELEM=uint16_t -DSTORE16
#ifdef STORE16
#include "types.glsl"
#endif
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Src { ELEM src[]; };
layout(std430, binding = 1) writeonly buffer Dst { ELEM dst[]; };
layout(push_constant) uniform Push { uint rows, cols, src_ld, dst_ld, src_skip, dst_skip; };

void main() {
  uint n = rows * cols, stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
    uint r = i / cols, c = i - r * cols;
    dst[dst_skip + r * dst_ld + c] = src[src_skip + r * src_ld + c];
  }
}
