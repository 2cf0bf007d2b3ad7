#pragma once
#include "engine/program.hpp"

namespace vkm::ops {
// Elementwise ops over tensors of equal element count (shapes may differ; elements pair up in order).
// `out` may be exactly an input (in place: add(p, y, x, y) is y += x) but must not partly overlap one.
// add: all f32, all f16 or all bf16 (the mixed path's residual stream; fp32 sum, rounded once to the storage).
void add(Program& p, const Tensor& a, const Tensor& b, const Tensor& out);  // out = a + b
// scale: f32.
void scale(Program& p, const Tensor& x, float alpha, const Tensor& out);    // out = alpha * x
}  // namespace vkm::ops
