#include "engine/ops/cross_entropy.hpp"

#include <iterator>
#include <limits>

#include "engine/ops/common.hpp"

namespace vkm::ops {

int64_t cross_entropy_scratch_elems(int64_t rows) { return rows + 1; }

void cross_entropy(Program& p, const Tensor& logits, const Tensor& targets, const Tensor& mask,
                   const Tensor& grad_scale, const Tensor& loss, const Tensor& scratch) {
  auto fail = [&](const std::string& why) {
    throw Error("cross_entropy: " + why + " (logits " + logits.describe() + ", targets " + targets.describe() +
                ", mask " + mask.describe() + ", grad_scale " + grad_scale.describe() + ", loss " + loss.describe() +
                ", scratch " + scratch.describe() + ")");
  };
  for (const Tensor* t : {&logits, &targets, &mask, &grad_scale, &loss, &scratch})
    if (!*t) fail("a tensor is not allocated");
  if (!is_float(logits.dtype)) fail("logits must be f32, f16 or bf16");
  if (logits.rank() < 2 || logits.numel() == 0) fail("logits must be a non-empty [..., V]");
  const int64_t vocab = logits.dim(-1), rows = logits.numel() / vocab;
  if (vocab > std::numeric_limits<int32_t>::max()) fail("V must fit an i32 target");
  if (targets.dtype != DType::i32 || targets.numel() != rows) fail("targets must be i32 with one element a row");
  if (mask.dtype != DType::f32 || mask.numel() != rows) fail("mask must be f32 with one element a row");
  if (grad_scale.dtype != DType::f32 || grad_scale.numel() != 1) fail("grad_scale must be one f32 element");
  if (loss.dtype != DType::f32 || loss.numel() != 1) fail("loss must be one f32 element");
  if (scratch.dtype != DType::f32 || scratch.numel() < cross_entropy_scratch_elems(rows))
    fail("scratch must be f32 with at least " + std::to_string(cross_entropy_scratch_elems(rows)) +
         " elements (cross_entropy_scratch_elems)");
  const Tensor used = scratch.flat().view(0, {cross_entropy_scratch_elems(rows)});
  // The written tensors first: none may overlap any other tensor.
  const Tensor* all[] = {&logits, &loss, &used, &targets, &mask, &grad_scale};
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < std::size(all); ++j)
      if (i != j && all[i]->overlaps(*all[j])) fail(all[i]->describe() + " overlaps " + all[j]->describe());

  Context& ctx = p.context();
  require_storage(ctx, logits.dtype, "cross_entropy");
  auto [tgt, target_skip] = aligned_span(ctx, targets, 0, rows);
  auto [msk, mask_skip] = aligned_span(ctx, mask, 0, rows);
  auto [scl, scale_skip] = aligned_span(ctx, grad_scale, 0, 1);
  auto [lss, loss_skip] = aligned_span(ctx, loss, 0, 1);
  auto [scr, scratch_skip] = aligned_span(ctx, used, 0, used.numel());

  struct CountPush {
    uint32_t rows, vocab, target_skip, mask_skip, scratch_skip;
  };
  const Kernel& count = ctx.kernel({"cross_entropy.count", 3, sizeof(CountPush), {kGroupSize}});
  p.dispatch(count, {in(tgt), in(msk), out(scr)},
             CountPush{uint32_t(rows), uint32_t(vocab), target_skip, mask_skip, scratch_skip}, 1);

  // Pieces of whole rows whose logits fit one binding even from the aligned offset below them.
  const DeviceInfo& d = ctx.info();
  const uint64_t width = dtype_size(logits.dtype);
  const int64_t budget = int64_t((d.max_storage_buffer_range - d.min_storage_offset_alignment) / width);
  if (vocab > budget) fail("one row of logits is larger than a storage binding may be");
  const int64_t piece = budget / vocab;
  struct RowsPush {
    uint32_t rows, vocab, row0, logit_skip, target_skip, mask_skip, scale_skip, scratch_skip;
  };
  const std::string rows_variant = logits.dtype == DType::f32
                                       ? "cross_entropy.rows"
                                       : "cross_entropy.rows_" + std::string(dtype_name(logits.dtype));
  const Kernel& row_kernel = ctx.kernel({rows_variant, 5, sizeof(RowsPush), {kGroupSize}});
  for (int64_t r0 = 0; r0 < rows; r0 += piece) {
    const int64_t n = std::min(piece, rows - r0);
    auto [lgt, logit_skip] = aligned_span(ctx, logits, r0 * vocab, n * vocab);
    const RowsPush push{uint32_t(n),  uint32_t(vocab), uint32_t(r0), logit_skip,
                        target_skip, mask_skip,       scale_skip,   scratch_skip};
    // Every device runs at least 65535 workgroups along x; the shader loops over rows beyond that.
    p.dispatch(row_kernel, {inout(lgt), in(tgt), in(msk), in(scl), inout(scr)}, push,
               uint32_t(std::min<int64_t>(n, 65535)));
  }

  struct MeanPush {
    uint32_t rows, scratch_skip, loss_skip;
  };
  const Kernel& mean = ctx.kernel({"cross_entropy.mean", 2, sizeof(MeanPush), {kGroupSize}});
  p.dispatch(mean, {in(scr), out(lss)}, MeanPush{uint32_t(rows), scratch_skip, loss_skip}, 1);
}

}  // namespace vkm::ops
