#version 450
// Reduces fp32 values to one sum per workgroup, in a fixed order so that results are bit-identical
// run to run: workgroup g takes the contiguous slice [g * slice, min((g + 1) * slice, n)); each invocation
// sums its strided share of the slice serially (Kahan-compensated, so long slices stay accurate), then a
// shared-memory tree adds the invocations' sums. The op wrapper runs it twice: once over the input into
// per-workgroup partials, then as one workgroup over the partials.
// The workgroup size must be a power of two.
//! variant sum -DSQUARES=0
//! variant sum_squares -DSQUARES=1
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) readonly buffer In { float x[]; };
layout(std430, binding = 1) writeonly buffer Out { float partial[]; };
layout(push_constant) uniform Push { uint n; uint slice; };

shared float tree[gl_WorkGroupSize.x];

void main() {
  uint t = gl_LocalInvocationID.x;
  uint begin = gl_WorkGroupID.x * slice;
  uint end = min(begin + slice, n);

  // `precise` keeps the compiler from simplifying the compensation away.
  precise float sum = 0.0;
  precise float lost = 0.0;  // the rounding error of the last addition, taken back from the next term
  for (uint i = begin + t; i < end; i += gl_WorkGroupSize.x) {
    float v = SQUARES != 0 ? x[i] * x[i] : x[i];
    precise float y = v - lost;
    precise float s = sum + y;
    lost = (s - sum) - y;
    sum = s;
  }
  tree[t] = sum - lost;
  barrier();
  for (uint h = gl_WorkGroupSize.x / 2; h > 0; h /= 2) {
    if (t < h) tree[t] += tree[t + h];
    barrier();
  }
  if (t == 0) partial[gl_WorkGroupID.x] = tree[0];
}
