#pragma once
// The global L2 norm of all gradients, the clip factor it implies, and a non-finite flag, left on the device
// for adamw (shaders/grad_norm.comp).
#include "engine/program.hpp"

namespace vkm::ops {

// What grad_norm writes, three f32 in this order: a trainer reads them with the loss after the step, and
// adamw reads `clip` and `non_finite` on the device.
struct GradStats {
  float norm;        // ‖g‖₂ over every gradient
  float clip;        // min(1, max_norm / (norm + 1e-6)); 1 without clipping; 0 when the norm is not finite
  float non_finite;  // 1 when the norm is infinite or NaN, else 0
};
constexpr int64_t kGradStatsElems = 3;

// Elements of f32 scratch grad_norm needs for n gradients (ops::reduce's partials and the sum of squares).
int64_t grad_norm_scratch_elems(const Context& ctx, int64_t n);

// grads: the flat f32 buffer of all gradients, of any size (bound in pieces past maxStorageBufferRange).
// stats: f32 with kGradStatsElems elements, at any offset. max_norm <= 0 (or infinity) turns clipping off:
// the norm and the flag are still computed. The flag is also set when the sum of squares overflows fp32
// (a norm past ~1.8e19), which a loss-scaled step treats like an overflowed gradient. grads and scratch
// start at storage-aligned offsets (as whole arena allocations do); scratch overlaps nothing else.
//
// With `scaling` (mixed precision: the gradients come from the loss times a scale), the norm and the clip
// factor are those of the unscaled gradients, and the clip factor also carries 1/scale, so adamw's
// g·clip is the unscaled, clipped gradient. The scale is then updated on the device for the next step (see
// LossScaling) and written, divided by `accum`, into the loss's grad_scale.
struct LossScaling {
  Tensor state;       // f32 [kLossScaleStateElems], read and written: LossScaleState
  Tensor grad_scale;  // f32 [1]: what the cross-entropy's gradient is multiplied by (scale / accum)
  int accum = 1;      // micro-batches per step
  uint32_t growth_interval = 2000;  // clean steps in a row that double the scale (torch's GradScaler default)
};
// The state the host writes once (initial scale, zeros) and reads with the step's statistics: an overflow
// halves the scale (not below 1) and counts as skipped; growth_interval clean steps double it (up to 2^24).
struct LossScaleState {
  float scale = 65536;  // torch's GradScaler starts at 2^16
  float clean_steps = 0;
  float skipped_steps = 0;
};
constexpr int64_t kLossScaleStateElems = 3;
void grad_norm(Program& p, const Tensor& grads, float max_norm, const Tensor& stats, const Tensor& scratch,
               const LossScaling* scaling = nullptr);

}  // namespace vkm::ops
