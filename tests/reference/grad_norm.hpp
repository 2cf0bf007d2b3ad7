#pragma once
#include "tests/reference/rounding.hpp"

namespace vkm::ref {

double l2_norm(const Vec& g);
// torch.nn.utils.clip_grad_norm_'s factor: min(1, max_norm / (norm + 1e-6)); 1 when max_norm is not positive.
double clip_factor(double norm, double max_norm);

}  // namespace vkm::ref
