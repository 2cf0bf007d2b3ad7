#include "engine/ops/cast.hpp"

#include "engine/ops/common.hpp"
#include "engine/ops/copy.hpp"

namespace vkm::ops {

void cast(Program& p, const Tensor& src, const Tensor& dst) {
  std::string what = "cast from " + src.describe() + " to " + dst.describe();
  if (src.numel() != dst.numel()) throw Error(what + ": element counts differ");
  if (src.dtype == dst.dtype) return copy(p, src, dst);
  auto is_float = [](DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; };
  if (!is_float(src.dtype) || !is_float(dst.dtype)) throw Error(what + ": only f32, f16 and bf16 convert");
  if (src.overlaps(dst)) throw Error(what + ": the tensors overlap");
  require_16bit(p.context(), "cast");  // every pair of distinct float types has a 16-bit side

  struct Push {
    uint32_t n;
  };
  std::string variant = "cast." + std::string(dtype_name(src.dtype)) + "_to_" + std::string(dtype_name(dst.dtype));
  const Kernel& k = p.context().kernel({variant, 2, sizeof(Push), {kGroupSize}});
  uint32_t widest = uint32_t(std::max(dtype_size(src.dtype), dtype_size(dst.dtype)));
  for_each_piece(p.context(), src.numel(), widest, [&](int64_t start, int64_t count) {
    p.dispatch(k, {in(src.flat().view(start, {count})), out(dst.flat().view(start, {count}))},
               Push{uint32_t(count)}, stride_groups(count));
  });
}

}  // namespace vkm::ops
