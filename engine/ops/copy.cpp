#include "engine/ops/copy.hpp"

#include <utility>

#include "engine/ops/common.hpp"

namespace vkm::ops {

void copy(Program& p, const Tensor& src, const Tensor& dst) {
  std::string what = "copy from " + src.describe() + " to " + dst.describe();
  if (dtype_size(src.dtype) != dtype_size(dst.dtype) || src.numel() != dst.numel())
    throw Error(what + ": needs equal element counts and element sizes");
  if (src.overlaps(dst)) throw Error(what + ": the tensors overlap");
  // A transfer command: no binding size limit to split around, and no 16-bit device features needed.
  if (src.numel() > 0) p.copy(src, dst);
}

void copy_2d(Program& p, const Tensor& src, const Tensor& dst, int64_t rows, int64_t cols, int64_t src_ld,
             int64_t dst_ld) {
  std::string what = "copy_2d of " + std::to_string(rows) + "x" + std::to_string(cols) + " from " + src.describe() +
                     " (ld " + std::to_string(src_ld) + ") to " + dst.describe() + " (ld " + std::to_string(dst_ld) + ")";
  const uint32_t width = uint32_t(dtype_size(src.dtype));
  if (width != dtype_size(dst.dtype)) throw Error(what + ": element sizes differ");
  if (rows < 0 || cols < 0 || src_ld < 0 || dst_ld < 0) throw Error(what + ": negative size or stride");
  if (rows == 0 || cols == 0) return;
  if (rows > 1 && dst_ld < cols) throw Error(what + ": destination rows overlap (ld < cols)");
  const int64_t src_span = (rows - 1) * src_ld + cols, dst_span = (rows - 1) * dst_ld + cols;
  if (src_span > src.numel()) throw Error(what + ": the region runs past the source's end");
  if (dst_span > dst.numel()) throw Error(what + ": the region runs past the destination's end");
  if (src.buffer == dst.buffer && src.offset < dst.offset + dst_span * width &&
      dst.offset < src.offset + src_span * width)
    throw Error(what + ": source and destination regions overlap");

  // Bind only the rows each dispatch touches (fewer false hazards in the program), in pieces of whole rows
  // whose bindings fit maxStorageBufferRange even when started at the aligned offset below them. Within a
  // piece every index stays below that range, so 32 bits hold them (an ld that does not fit only comes
  // with one-row pieces, where it is multiplied by zero).
  const Context& ctx = p.context();
  const DeviceInfo& d = ctx.info();
  const int64_t budget = int64_t((d.max_storage_buffer_range - d.min_storage_offset_alignment) / width);
  if (cols > budget) throw Error(what + ": one row is larger than a storage binding may be");
  auto rows_fitting = [&](int64_t ld) { return ld == 0 ? rows : (budget - cols) / ld + 1; };
  const int64_t piece = std::min({rows, rows_fitting(src_ld), rows_fitting(dst_ld)});

  struct Push {
    uint32_t rows, cols, src_ld, dst_ld, src_skip, dst_skip;
  };
  if (width == 2) require_16bit(ctx, "copy_2d");
  const Kernel& k = p.context().kernel({width == 2 ? "copy.b16" : "copy.b32", 2, sizeof(Push), {kGroupSize}});
  for (int64_t r0 = 0; r0 < rows; r0 += piece) {
    const int64_t n = std::min(piece, rows - r0);
    auto [s, s_skip] = aligned_span(ctx, src, r0 * src_ld, (n - 1) * src_ld + cols);
    auto [t, t_skip] = aligned_span(ctx, dst, r0 * dst_ld, (n - 1) * dst_ld + cols);
    Push push{uint32_t(n), uint32_t(cols), uint32_t(src_ld), uint32_t(dst_ld), s_skip, t_skip};
    p.dispatch(k, {in(s), out(t)}, push, stride_groups(n * cols));
  }
}

}  // namespace vkm::ops
