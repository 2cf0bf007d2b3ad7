#pragma once
#include "engine/program.hpp"

namespace vkm::ops {

enum class Reduce { sum, sum_squares };

// Elements of f32 scratch that reduce() needs for an input of n elements; depends only on n and the
// device's limits, so a caller sizes it once (e.g. for the flat buffer of all gradients) and keeps it.
int64_t reduce_scratch_elems(const Context& ctx, int64_t n);

// out (one f32 element) = the sum of x's elements, or of their squares (the squared L2 norm: over the
// flat gradient buffer that is ‖g‖², left on the device for whatever clips by it). x is f32, non-empty,
// of any size. The order of additions is fixed by n alone, so results are bit-identical run to run;
// fp32 with compensated per-thread sums. scratch must not overlap x or out.
void reduce(Program& p, Reduce op, const Tensor& x, const Tensor& out, const Tensor& scratch);

}  // namespace vkm::ops
