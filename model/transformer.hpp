#pragma once
// The MiniMind2 / LLaMA decoder recorded through the engine's ops: one Program holds the whole forward
// (embedding, N blocks, final RMSNorm, tied head logits = h·Eᵀ, fused cross-entropy with targets and loss
// mask) and the whole backward (the head's dh and dE += dlogitsᵀ·h, the blocks in reverse, the embedding's
// gradient added into the same dE).
//
// Precision: activations f32, or f16 or bf16 for mixed-precision training. With 16 bits, every activation and
// activation gradient is stored in that type (arithmetic in fp32 inside each op), the matmuls and the embedding read an f16 copy
// of the weights in that type (which AdamW writes), the norms read the fp32 master weights, and every weight
// gradient is summed in fp32. The loss's backward is multiplied by grad_scale: a trainer puts the loss scale
// there for f16, which keeps small gradients from rounding to zero (bf16 has fp32's range and needs none).
//
// Activations live in one Arena sized up front for a batch [B, T] (activation_bytes); every intermediate the
// backward reads is kept per layer. Weights and gradients are views into the flat buffers of ParamLayout;
// every weight gradient is ACCUMULATED (micro-batches add), so a trainer zeroes the gradients (ops::fill)
// before the first micro-batch of a step.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "engine/program.hpp"
#include "model/config.hpp"
#include "model/params.hpp"

namespace vkm::model {

// Bytes of the activation arena for a batch of B sequences of T tokens, each tensor rounded up to `align`
// bytes (the arena's alignment: 256, or the device's storage offset alignment where that is larger).
uint64_t activation_bytes(const ModelConfig& config, int64_t B, int64_t T, DType activations = DType::f32,
                          uint64_t align = 256);

class Transformer {
 public:
  // Sizes and allocates the activations (throws vkm::Error, naming the sizes, before allocating anything when
  // they exceed the device's largest heap or T exceeds max_position_embeddings, or when the device lacks
  // the storage for 16-bit activations) and uploads the rope table.
  Transformer(Context& ctx, const ParamLayout& layout, int64_t B, int64_t T, DType activations = DType::f32);
  ~Transformer();
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  // Inputs the host writes between submissions: ids and targets i32 [B, T], the loss mask f32 [B, T], and
  // grad_scale f32 [1] (1 after construction; a trainer folds accumulation and loss scaling into it).
  const Tensor& ids() const { return ids_; }
  const Tensor& targets() const { return targets_; }
  const Tensor& mask() const { return mask_; }
  const Tensor& grad_scale() const { return grad_scale_; }
  // Outputs: the mean loss over unmasked positions, f32 [1]; the logits [B, T, V] in the activations' type,
  // which hold dlogits after a program with the loss ran (cross-entropy works in place).
  const Tensor& loss() const { return loss_; }
  const Tensor& logits() const { return logits_; }

  // Records forward and loss, then, when `grads` is given, the backward adding every parameter's gradient
  // into its view of `grads`. params and grads: flat f32 buffers of the layout's total_elems(); params_half,
  // with 16-bit activations: the copy of params in that type (same layout).
  void record(Program& p, const Tensor& params, const Tensor& grads = {}, const Tensor& params_half = {}) const;

  int64_t batch() const { return B_; }
  int64_t seq() const { return T_; }
  DType activations() const { return act_; }
  uint64_t arena_bytes() const;

 private:
  struct Acts;  // every activation tensor (transformer.cpp)
  const ParamLayout& layout_;
  int64_t B_, T_;
  DType act_;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<Acts> a_;
  Tensor ids_, targets_, mask_, grad_scale_, loss_, logits_;
};

}  // namespace vkm::model
