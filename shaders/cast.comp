#version 450
// dst[i] = src[i] converted between float types. Every conversion goes through fp32, which holds every f16
// and bf16 value exactly, so the only rounding is the final one (nearest even, in integer arithmetic).
//! variant f32_to_f16  -DSRC=float     -DDST=float16_t -DLOAD=float            -DSTORE=f32_to_f16_exact
//! variant f16_to_f32  -DSRC=float16_t -DDST=float     -DLOAD=f16_to_f32_exact -DSTORE=float
//! variant f32_to_bf16 -DSRC=float     -DDST=uint16_t  -DLOAD=float            -DSTORE=f32_to_bf16
//! variant bf16_to_f32 -DSRC=uint16_t  -DDST=float     -DLOAD=bf16_to_f32      -DSTORE=float
//! variant f16_to_bf16 -DSRC=float16_t -DDST=uint16_t  -DLOAD=f16_to_f32_exact -DSTORE=f32_to_bf16
//! variant bf16_to_f16 -DSRC=uint16_t  -DDST=float16_t -DLOAD=bf16_to_f32      -DSTORE=f32_to_f16_exact
#include "types.glsl"
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer Src { SRC src[]; };
layout(std430, binding = 1) writeonly buffer Dst { DST dst[]; };
layout(push_constant) uniform Push { uint n; };

void main() {
  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) dst[i] = STORE(LOAD(src[i]));
}
