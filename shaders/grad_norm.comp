#version 450
// The global gradient norm and what follows from it, from the sum of squares ops::reduce left on the device:
//   stats[0] = norm = sqrt(sum of squares)
//   stats[1] = clip factor = min(1, max_norm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_; 1 when
//              max_norm is not positive (no clipping); 0 when the norm is not finite
//   stats[2] = 1 when the norm is infinite or NaN (a gradient is, or the sum of squares passed fp32), else 0
// adamw reads the clip factor and the flag where they are, so no value goes through the host.
//
// LOSS_SCALE: the gradients were computed from the loss times state[0] (mixed precision). The norm is divided
// by that scale and the clip factor also unscales (adamw multiplies the gradient by it). Then the scale is
// updated for the next step, as torch.cuda.amp.GradScaler does, without a host round trip: a step whose
// gradients overflowed halves it (never below 1) and counts as skipped; `growth_interval` clean steps in a row
// double it (never above 2^24). grad_scale[0], the loss's backward scale, becomes the new scale / accum.
//! variant plain -DLOSS_SCALE=0
//! variant scaled -DLOSS_SCALE=1
layout(local_size_x = 1) in;
layout(std430, binding = 0) readonly buffer SumSquares { float sum_squares[]; };
layout(std430, binding = 1) writeonly buffer Stats { float stats[]; };
#if LOSS_SCALE
// state: scale, clean steps since the scale last changed, skipped steps in all.
layout(std430, binding = 2) buffer State { float state[]; };
layout(std430, binding = 3) writeonly buffer GradScale { float grad_scale[]; };
#endif
layout(push_constant) uniform Push {
  float max_norm;
  uint stats_skip;
  uint state_skip, grad_scale_skip;
  float inv_accum;
  uint growth_interval;
};

void main() {
  float norm = sqrt(sum_squares[0]);
  // By the exponent bits, which no floating-point mode can optimize away.
  bool non_finite = (floatBitsToUint(norm) & 0x7f800000u) == 0x7f800000u;
  float unscale = 1.0;
#if LOSS_SCALE
  float scale = state[state_skip];
  unscale = 1.0 / scale;
  norm *= unscale;
  float clean = non_finite ? 0.0 : state[state_skip + 1] + 1.0;
  if (non_finite) scale = max(scale * 0.5, 1.0);
  if (clean >= float(growth_interval)) {
    scale = min(scale * 2.0, 16777216.0);
    clean = 0.0;
  }
  state[state_skip] = scale;
  state[state_skip + 1] = clean;
  state[state_skip + 2] += non_finite ? 1.0 : 0.0;
  grad_scale[grad_scale_skip] = scale * inv_accum;
#endif
  float clip = non_finite ? 0.0 : max_norm > 0.0 ? min(1.0, max_norm / (norm + 1e-6)) : 1.0;
  stats[stats_skip] = norm;
  stats[stats_skip + 1] = clip * unscale;
  stats[stats_skip + 2] = non_finite ? 1.0 : 0.0;
}
