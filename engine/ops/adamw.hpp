#pragma once
// One AdamW optimizer step over flat parameter buffers (shaders/adamw.comp).
#include "engine/program.hpp"

namespace vkm::ops {

// Fixed for a recorded program (push constants). PyTorch's defaults, but MiniMind's weight decay.
struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.01f;
};

// The per-step values, read on the device from a tensor of two 4-byte elements (f32 or u32) that the host
// writes between submissions (write_adamw_step), so the recorded program never changes.
struct AdamWStep {
  float lr;
  uint32_t t;  // the step number, 1 on the first step (as PyTorch counts); 0 would divide by zero
};
constexpr int64_t kAdamWStepElems = 2;

// Writes `step` into `state` through mapped memory (a MemoryKind::host arena, or device memory the host can
// see). It does not synchronize: no submitted program that reads `state` may still be running.
void write_adamw_step(const Tensor& state, AdamWStep step);

// params, grads, m and v: f32 views of equal element count, at any offset and of any size (they are bound in
// pieces past maxStorageBufferRange). To give parameter groups their own weight decay, call it once per
// contiguous range of the flat buffers, each with its own config. grad_stats is grad_norm's output: the
// gradient is multiplied by its clip factor, and nothing is written when its non-finite flag is set.
// params_half, when given, is a 16-bit copy (f16 or bf16, same count) the updated parameters are also
// stored to: params is then the fp32 master copy of mixed-precision training.
// params, m, v and params_half must not overlap each other or the inputs.
void adamw(Program& p, const AdamWConfig& config, const Tensor& params, const Tensor& grads, const Tensor& m,
           const Tensor& v, const Tensor& step_state, const Tensor& grad_stats, const Tensor& params_half = {});

}  // namespace vkm::ops
