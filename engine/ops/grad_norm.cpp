#include "engine/ops/grad_norm.hpp"

#include "engine/ops/common.hpp"
#include "engine/ops/reduce.hpp"

namespace vkm::ops {

namespace {

// Where the sum of squares sits in scratch: after reduce's partials, at the next bindable offset.
int64_t sum_squares_at(const Context& ctx, int64_t n) {
  const int64_t align = int64_t(ctx.info().min_storage_offset_alignment / 4);
  return (reduce_scratch_elems(ctx, n) + align - 1) / align * align;
}

}  // namespace

int64_t grad_norm_scratch_elems(const Context& ctx, int64_t n) { return sum_squares_at(ctx, n) + 1; }

void grad_norm(Program& p, const Tensor& grads, float max_norm, const Tensor& stats, const Tensor& scratch,
               const LossScaling* scaling) {
  Context& ctx = p.context();
  auto fail = [&](const std::string& why) {
    throw Error("grad_norm: " + why + " (grads " + grads.describe() + ", stats " + stats.describe() + ", scratch " +
                scratch.describe() + ")");
  };
  for (const Tensor* t : {&grads, &stats, &scratch})
    if (!*t) fail("a tensor is not allocated");
  const int64_t n = grads.numel();
  if (grads.dtype != DType::f32 || n == 0) fail("grads must be non-empty f32");
  if (stats.dtype != DType::f32 || stats.numel() != kGradStatsElems)
    fail("stats must be f32 with " + std::to_string(kGradStatsElems) + " elements");
  if (scratch.dtype != DType::f32 || scratch.numel() < grad_norm_scratch_elems(ctx, n))
    fail("scratch must be f32 with at least " + std::to_string(grad_norm_scratch_elems(ctx, n)) +
         " elements (grad_norm_scratch_elems)");
  // ops::reduce binds both from their first element.
  const uint64_t align = ctx.info().min_storage_offset_alignment;
  if (grads.offset % align || scratch.offset % align) fail("grads and scratch must start at aligned offsets");
  const Tensor used = scratch.flat().view(0, {grad_norm_scratch_elems(ctx, n)});
  if (used.overlaps(grads) || used.overlaps(stats) || stats.overlaps(grads))
    fail("grads, stats and scratch must not overlap");
  if (scaling) {
    const Tensor &state = scaling->state, &grad_scale = scaling->grad_scale;
    if (!state || state.dtype != DType::f32 || state.numel() != kLossScaleStateElems)
      fail("the loss scale state must be f32 with " + std::to_string(kLossScaleStateElems) + " elements");
    if (!grad_scale || grad_scale.dtype != DType::f32 || grad_scale.numel() != 1)
      fail("the loss's grad_scale must be f32 with one element");
    if (scaling->accum < 1 || scaling->growth_interval < 1) fail("accum and growth_interval must be positive");
    for (const Tensor* t : {&grads, &stats, &used})
      if (state.overlaps(*t) || grad_scale.overlaps(*t)) fail("the loss scale tensors must not overlap the others");
    if (state.overlaps(grad_scale)) fail("the loss scale state must not overlap grad_scale");
  }

  const Tensor sum_squares = used.view(sum_squares_at(ctx, n), {1});
  reduce(p, Reduce::sum_squares, grads, sum_squares, used.view(0, {reduce_scratch_elems(ctx, n)}));
  struct Push {
    float max_norm;
    uint32_t stats_skip, state_skip, grad_scale_skip;
    float inv_accum;
    uint32_t growth_interval;
  };
  auto [s, skip] = aligned_span(ctx, stats, 0, kGradStatsElems);
  if (!scaling) {
    p.dispatch(ctx.kernel({"grad_norm.plain", 2, sizeof(Push), {}}), {in(sum_squares), out(s)},
               Push{max_norm, skip, 0, 0, 1.0f, 1}, 1);
    return;
  }
  auto [state, state_skip] = aligned_span(ctx, scaling->state, 0, kLossScaleStateElems);
  auto [grad_scale, grad_scale_skip] = aligned_span(ctx, scaling->grad_scale, 0, 1);
  p.dispatch(ctx.kernel({"grad_norm.scaled", 4, sizeof(Push), {}}),
             {in(sum_squares), out(s), inout(state), out(grad_scale)},
             Push{max_norm, skip, state_skip, grad_scale_skip, 1.0f / float(scaling->accum), scaling->growth_interval},
             1);
}

}  // namespace vkm::ops
