#include "engine/ops/reduce.hpp"

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// First-pass workgroups per bindable piece: enough to fill a large GPU, few enough that one workgroup
// adds up all the partials quickly.
constexpr int64_t kMaxGroups = 1024;

int64_t groups_for(int64_t count) { return std::clamp<int64_t>((count + kGroupSize - 1) / kGroupSize, 1, kMaxGroups); }

}  // namespace

int64_t reduce_scratch_elems(const Context& ctx, int64_t n) {
  int64_t total = 0;
  for_each_piece(ctx, n, 4, [&](int64_t, int64_t count) { total += groups_for(count); });
  return total;
}

void reduce(Program& p, Reduce op, const Tensor& x, const Tensor& out, const Tensor& scratch) {
  Context& ctx = p.context();
  const int64_t n = x.numel();
  const int64_t partials = reduce_scratch_elems(ctx, n);
  if (x.dtype != DType::f32 || n == 0) throw Error("reduce: needs a non-empty f32 input, given " + x.describe());
  if (out.dtype != DType::f32 || out.numel() != 1)
    throw Error("reduce: the output must be one f32 element, given " + out.describe());
  if (scratch.dtype != DType::f32 || scratch.numel() < partials)
    throw Error("reduce: scratch for " + std::to_string(n) + " elements must be f32 with at least " +
                std::to_string(partials) + " elements (reduce_scratch_elems), given " + scratch.describe());
  const Tensor used = scratch.flat().view(0, {partials});
  if (used.overlaps(x) || used.overlaps(out))
    throw Error("reduce: scratch " + scratch.describe() + " overlaps the input or the output");

  struct Push {
    uint32_t n, slice;
  };
  const Kernel& first =
      ctx.kernel({op == Reduce::sum ? "reduce.sum" : "reduce.sum_squares", 2, sizeof(Push), {kGroupSize}});
  const Kernel& second = ctx.kernel({"reduce.sum", 2, sizeof(Push), {kGroupSize}});

  // Pass 1: each piece's workgroups write their partials to the piece's own section of scratch. Every
  // piece but the last fills kMaxGroups groups, so sections start 4 KiB apart: bindable on any device.
  int64_t base = 0;
  for_each_piece(ctx, n, 4, [&](int64_t start, int64_t count) {
    const int64_t groups = groups_for(count);
    const Push push{uint32_t(count), uint32_t((count + groups - 1) / groups)};
    p.dispatch(first, {in(x.flat().view(start, {count})), vkm::out(used.view(base, {groups}))}, push,
               uint32_t(groups));
    base += groups;
  });
  // Pass 2: one workgroup sums all partials (of squares too, by now).
  p.dispatch(second, {in(used), vkm::out(out)}, Push{uint32_t(partials), uint32_t(partials)}, 1);
}

}  // namespace vkm::ops
