#version 450
// The global gradient norm and what follows from it, from the sum of squares ops::reduce left on the device:
//   stats[0] = norm = sqrt(sum of squares)
//   stats[1] = clip factor = min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_; 1 when
//              max_norm is not positive (no clipping); 0 when the norm is not finite
//   stats[2] = 1 when the norm is infinite or NaN (a gradient is, or the sum of squares passed fp32), else 0
// adamw reads the clip factor and the flag where they are, so no value goes through the host.
layout(local_size_x = 1) in;
layout(std430, binding = 0) readonly buffer SumSquares { float sum_squares[]; };
layout(std430, binding = 1) writeonly buffer Stats { float stats[]; };
layout(push_constant) uniform Push { float max_norm; uint stats_skip; };

void main() {
  float norm = sqrt(sum_squares[0]);
  // By the exponent bits, which no floating-point mode can optimize away.
  bool non_finite = (floatBitsToUint(norm) & 0x7f800000u) == 0x7f800000u;
  float clip = non_finite ? 0.0 : max_norm > 0.0 ? min(1.0, max_norm / (norm + 1e-6)) : 1.0;
  stats[stats_skip] = norm;
  stats[stats_skip + 1] = clip;
  stats[stats_skip + 2] = non_finite ? 1.0 : 0.0;
}
