#pragma once
// RMSNorm over the last dim (shaders/rmsnorm.comp): y = x / sqrt(mean(x²) + eps) * w, as in LLaMA and
// MiniMind. Leading dims are rows. Mixed precision: activations x, y, dy, dx are all f32, f16 or bf16; the
// weight w, its gradient dw, the saved rstd and the scratch are always f32 (master weights stay fp32, and
// rstd feeds the backward at full precision). Arithmetic is fp32 throughout; a 16-bit y is rounded once, from
// x * rstd * w (MiniMind rounds x * rstd to the activation type before multiplying by w).
#include "engine/program.hpp"

namespace vkm::ops {

constexpr float kRmsNormEps = 1e-5f;

// x [..., C], w [C] -> y [..., C] (x's shape), rstd [rows] (f32, rows = x.numel() / C): 1 / sqrt(mean(x²) + eps)
// per row, kept for the backward. y and rstd must not overlap the inputs or each other.
void rmsnorm(Program& p, const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& rstd,
             float eps = kRmsNormEps);

// f32 scratch elements rmsnorm_backward needs for rows of C: one partial dw per block of rows. Depends on
// the sizes alone, so the order of dw's additions (and its bits) is fixed by them.
int64_t rmsnorm_backward_scratch_elems(int64_t rows, int64_t C);

// Given dy (y's shape) and the forward's x, w and rstd: dx = ∂L/∂x (x's shape), and dw = Σ_rows dy·x·rstd,
// or dw += that with `accumulate` (gradients summed over micro-batches). dw's sum over all rows is two-pass
// and fixed-order: bit-identical run to run. Outputs and scratch must not overlap anything else.
void rmsnorm_backward(Program& p, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                      const Tensor& dx, const Tensor& dw, const Tensor& scratch, bool accumulate);

}  // namespace vkm::ops
