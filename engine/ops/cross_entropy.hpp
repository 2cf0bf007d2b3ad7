#pragma once
// Cross-entropy loss of a language model's logits fused with its gradient (shaders/cross_entropy.comp).
#include "engine/program.hpp"

namespace vkm::ops {

// Elements of f32 scratch cross_entropy needs for `rows` rows: the count of unmasked rows and one loss a row.
int64_t cross_entropy_scratch_elems(int64_t rows);

// logits [..., V] (f32, or f16 or bf16 with 16-bit support), rows = the product of the leading dims; targets i32 and
// mask f32 with `rows` elements each ([B, T] for logits [B, T, V]); grad_scale and loss f32 with one element.
//   loss   = sum_r mask[r] * (logsumexp(logits[r]) - logits[r][targets[r]]) / count, count = sum_r mask[r]
//   logits is overwritten by dlogits = (softmax(logits[r]) - onehot(targets[r])) * mask[r] * grad_scale / count
// count and grad_scale stay on the device: a trainer folds gradient accumulation and loss scaling into
// grad_scale by writing it between submissions, without recording again. The loss is unscaled.
// A row whose target is outside [0, V) counts as masked: zero gradient, no loss, not counted. When no row
// counts, the loss is 0 and every gradient 0. With f16 logits the gradients are stored in f16 too, which
// loses precision below 6e-5 and rounds below 3e-8 to zero: use a grad_scale that lifts them (loss scaling).
// bf16 logits store bf16 gradients: fp32's range, so no loss scaling, but only 8 significant bits.
// Any tensor may be a view at any offset; logits past maxStorageBufferRange run in pieces of whole rows.
// scratch (cross_entropy_scratch_elems) and loss must not overlap each other or any other tensor.
void cross_entropy(Program& p, const Tensor& logits, const Tensor& targets, const Tensor& mask,
                   const Tensor& grad_scale, const Tensor& loss, const Tensor& scratch);

}  // namespace vkm::ops
