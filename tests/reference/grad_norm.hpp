#pragma once
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

double l2_norm(const Vec& g);
// torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)); 1 when max_norm is not positive.
double clip_factor(double norm, double max_norm);

// ops::LossScaleState in double, and one step of grad_norm with loss scaling: the statistics of the unscaled
// gradients and the next state (torch.cuda.amp.GradScaler's update, floored at 1 and capped at 2^24).
struct LossScale {
  double scale, clean_steps, skipped_steps;
};
struct ScaledGradStats {
  double norm, clip;  // clip carries 1/scale; 0 on overflow
  bool non_finite;
  LossScale next;
  double grad_scale;  // next.scale / accum
};
ScaledGradStats scaled_grad_stats(const Vec& scaled_grads, double max_norm, const LossScale& state, int accum,
                                  int growth_interval);

}  // namespace vkm::ref
