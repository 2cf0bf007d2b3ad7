#pragma once
// Cross-entropy of rows of logits and its gradient, in double, written from the definitions.
#include <cstdint>
#include <vector>

#include "tests/reference/rounding.hpp"

namespace vkm::ref {

// logits [rows, V] row-major; targets and mask one per row. A row counts with weight mask[r] when its target
// is in [0, V), and not at all otherwise. count = the sum of the weights.
// The mean loss: sum_r w_r * (logsumexp(x_r) - x_r[t_r]) / count, or 0 when count is 0.
double cross_entropy_loss(const Vec& logits, const std::vector<int32_t>& targets, const Vec& mask, int64_t V);

// grad_scale times the gradient of cross_entropy_loss by the logits:
// (softmax(x_r) - onehot(t_r)) * w_r * grad_scale / count.
Vec cross_entropy_grad(const Vec& logits, const std::vector<int32_t>& targets, const Vec& mask, int64_t V,
                       double grad_scale);

}  // namespace vkm::ref
