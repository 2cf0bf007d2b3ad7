#pragma once
// One step of torch.optim.AdamW (amsgrad and maximize off), in double, written from PyTorch's documented
// algorithm: decoupled weight decay, then the Adam update with bias correction.
#include <cstdint>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

struct AdamWHyper {
  double beta1, beta2, eps, weight_decay;
};

// Updates p, m and v in place for step t (1 on the first), the gradient g multiplied by clip first.
void adamw_step(Vec& p, Vec& m, Vec& v, const Vec& g, double lr, uint32_t t, double clip, const AdamWHyper& h);

}  // namespace vkm::ref
