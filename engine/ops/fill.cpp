#include "engine/ops/fill.hpp"

#include "engine/ops/common.hpp"

namespace vkm::ops {

void fill(Program& p, const Tensor& t, double value) {
  struct Push {
    uint32_t n, pattern;
  };
  uint32_t width = uint32_t(dtype_size(t.dtype));
  if (width == 2) require_16bit(p.context(), "fill");
  const Kernel& k = p.context().kernel({width == 2 ? "fill.b16" : "fill.b32", 1, sizeof(Push), {kGroupSize}});
  uint32_t pattern = fill_pattern(t.dtype, value);
  for_each_piece(p.context(), t.numel(), width, [&](int64_t start, int64_t count) {
    p.dispatch(k, {out(t.flat().view(start, {count}))}, Push{uint32_t(count), pattern}, stride_groups(count));
  });
}

}  // namespace vkm::ops
