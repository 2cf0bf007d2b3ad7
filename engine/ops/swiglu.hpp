#pragma once
// SwiGLU (shaders/swiglu.comp), the gate of the feed-forward block: h = silu(gate) * up, silu(g) = g·sigmoid(g).
// MiniMind computes gate = x·W1ᵀ and up = x·W3ᵀ; they come as two tensors [..., F], or fused as one tensor
// [..., 2F] whose every row is [gate | up] (what one matmul against W1 stacked over W3 gives). h and dh
// are [..., F] with the same leading dims. All tensors are f32, all f16 or all bf16 (fp32 arithmetic inside).
// An output may be exactly an input of the same layout (in place) but must not partly overlap any tensor.
#include "engine/program.hpp"

namespace vkm::ops {

// h = silu(gate) * up
void swiglu(Program& p, const Tensor& gate, const Tensor& up, const Tensor& h);
void swiglu_fused(Program& p, const Tensor& gate_up, const Tensor& h);

// dgate = dh * up * silu'(gate), dup = dh * silu(gate); the fused form writes [dgate | dup] rows, the layout
// of gate_up, so the gradient goes back through the one stacked matmul.
void swiglu_backward(Program& p, const Tensor& gate, const Tensor& up, const Tensor& dh, const Tensor& dgate,
                     const Tensor& dup);
void swiglu_fused_backward(Program& p, const Tensor& gate_up, const Tensor& dh, const Tensor& dgate_up);

}  // namespace vkm::ops
