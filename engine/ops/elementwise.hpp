#pragma once
#include "engine/program.hpp"

namespace vkm::ops {
// Elementwise fp32 ops over tensors of equal element count (shapes may differ; elements pair up in order).
// `out` may be exactly an input (in place) but must not partly overlap one.
void add(Program& p, const Tensor& a, const Tensor& b, const Tensor& out);  // out = a + b
void scale(Program& p, const Tensor& x, float alpha, const Tensor& out);    // out = alpha * x
}  // namespace vkm::ops
