#include "engine/ops/rmsnorm.hpp"

#include <algorithm>
#include <bit>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// Rows of dw's first pass per workgroup: at least kBlockRows, more where there would be over kMaxBlocks
// blocks, so that the second pass (serial over blocks, per column) stays short.
constexpr int64_t kBlockRows = 16;
constexpr int64_t kMaxBlocks = 1024;

int64_t block_rows(int64_t rows) { return std::max(kBlockRows, (rows + kMaxBlocks - 1) / kMaxBlocks); }
int64_t blocks(int64_t rows) { return (rows + block_rows(rows) - 1) / block_rows(rows); }

std::string names(std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  std::string s;
  for (auto [name, t] : ts) s += std::string(s.empty() ? "" : ", ") + name + " " + t->describe();
  return s;
}

// Rows per dispatch, a multiple of `unit`, such that `row_bytes` of each bound tensor per row fit one
// binding even when it starts at the aligned offset below the piece.
int64_t rows_per_piece(const Context& ctx, int64_t row_bytes, int64_t unit, const std::string& what) {
  const DeviceInfo& d = ctx.info();
  const int64_t fit = int64_t(d.max_storage_buffer_range - d.min_storage_offset_alignment) / row_bytes / unit * unit;
  if (fit == 0)
    throw Error(what + ": " + std::to_string(unit) + " row(s) of " + std::to_string(row_bytes) +
                " bytes do not fit one storage binding on device '" + d.name + "'");
  return fit;
}

// Invocations per row: about two elements each, from a warp to kGroupSize. Idle invocations still take part
// in every step of the sum's tree, which on a CPU device (lavapipe) made a 256-wide group over C = 64 the
// slowest op of a small model's step.
uint32_t row_group(int64_t C) {
  return uint32_t(std::clamp<int64_t>(int64_t(std::bit_ceil(uint64_t(C))) / 2, 32, kGroupSize));
}

}  // namespace

void rmsnorm(Program& p, const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& rstd, float eps) {
  const std::string what = "rmsnorm (" + names({{"x", &x}, {"w", &w}, {"y", &y}, {"rstd", &rstd}}) + ")";
  if (!x || !w || !y || !rstd) throw Error(what + ": a tensor is not allocated");
  if (x.rank() < 1 || x.numel() == 0) throw Error(what + ": x must be non-empty [..., C]");
  const int64_t C = x.dim(-1), rows = x.numel() / C;
  if (!is_float(x.dtype) || y.dtype != x.dtype) throw Error(what + ": x and y must be both f32, f16 or bf16");
  if (w.dtype != DType::f32 || rstd.dtype != DType::f32) throw Error(what + ": w and rstd must be f32");
  if (y.shape != x.shape || w.numel() != C || rstd.numel() != rows)
    throw Error(what + ": want y of x's shape, w [" + std::to_string(C) + "] and rstd [" + std::to_string(rows) + "]");
  if (y.overlaps(x) || y.overlaps(w) || y.overlaps(rstd) || rstd.overlaps(x) || rstd.overlaps(w))
    throw Error(what + ": outputs overlap inputs or each other");
  if (!(eps > 0)) throw Error(what + ": eps must be positive");

  Context& ctx = p.context();
  require_storage(ctx, x.dtype, "rmsnorm");
  struct Push {
    uint32_t rows, C;
    float eps;
    uint32_t x_skip, w_skip, y_skip, r_skip;
  };
  const Kernel& k =
      ctx.kernel({"rmsnorm.forward_" + std::string(dtype_name(x.dtype)), 4, sizeof(Push), {row_group(C)}});
  const auto [wb, w_skip] = aligned_span(ctx, w, 0, C);
  const int64_t per = rows_per_piece(ctx, std::max<int64_t>(C * dtype_size(x.dtype), 4), 1, what);
  for (int64_t r0 = 0; r0 < rows; r0 += per) {
    const int64_t n = std::min(per, rows - r0);
    const auto [xb, x_skip] = aligned_span(ctx, x, r0 * C, n * C);
    const auto [yb, y_skip] = aligned_span(ctx, y, r0 * C, n * C);
    const auto [rb, r_skip] = aligned_span(ctx, rstd, r0, n);
    p.dispatch(k, {in(xb), in(wb), out(yb), out(rb)},
               Push{uint32_t(n), uint32_t(C), eps, x_skip, w_skip, y_skip, r_skip},
               uint32_t(std::min<int64_t>(n, 8192)));
  }
}

int64_t rmsnorm_backward_scratch_elems(int64_t rows, int64_t C) { return blocks(rows) * C; }

void rmsnorm_backward(Program& p, const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& rstd,
                      const Tensor& dx, const Tensor& dw, const Tensor& scratch, bool accumulate) {
  const std::string what =
      "rmsnorm_backward (" +
      names({{"dy", &dy}, {"x", &x}, {"w", &w}, {"rstd", &rstd}, {"dx", &dx}, {"dw", &dw}, {"scratch", &scratch}}) +
      ")";
  if (!dy || !x || !w || !rstd || !dx || !dw || !scratch) throw Error(what + ": a tensor is not allocated");
  if (x.rank() < 1 || x.numel() == 0) throw Error(what + ": x must be non-empty [..., C]");
  const int64_t C = x.dim(-1), rows = x.numel() / C;
  if (!is_float(x.dtype) || dy.dtype != x.dtype || dx.dtype != x.dtype)
    throw Error(what + ": x, dy and dx must be all f32, all f16 or all bf16");
  if (w.dtype != DType::f32 || rstd.dtype != DType::f32 || dw.dtype != DType::f32 || scratch.dtype != DType::f32)
    throw Error(what + ": w, rstd, dw and scratch must be f32");
  if (dy.shape != x.shape || dx.shape != x.shape || w.numel() != C || dw.numel() != C || rstd.numel() != rows)
    throw Error(what + ": want dy and dx of x's shape, w and dw [" + std::to_string(C) + "], rstd [" +
                std::to_string(rows) + "]");
  const int64_t partials = rmsnorm_backward_scratch_elems(rows, C);
  if (scratch.numel() < partials)
    throw Error(what + ": scratch needs " + std::to_string(partials) + " elements (rmsnorm_backward_scratch_elems)");
  const Tensor used = scratch.flat().view(0, {partials});
  const Tensor* all[] = {&dx, &dw, &used, &dy, &x, &w, &rstd};  // the written ones first
  for (int o = 0; o < 3; ++o)
    for (int t = 0; t < 7; ++t)
      if (o != t && all[o]->overlaps(*all[t])) throw Error(what + ": outputs or scratch overlap other tensors");

  Context& ctx = p.context();
  require_storage(ctx, x.dtype, "rmsnorm_backward");
  struct Push {
    uint32_t rows, C, slice, block0;
    uint32_t x_skip, w_skip, r_skip, dy_skip, dx_skip, p_skip;
  };
  const Kernel& k =
      ctx.kernel({"rmsnorm.backward_" + std::string(dtype_name(x.dtype)), 6, sizeof(Push), {row_group(C)}});
  const auto [wb, w_skip] = aligned_span(ctx, w, 0, C);
  const auto [pb, p_skip] = aligned_span(ctx, used, 0, partials);
  // Pieces hold whole blocks, so the blocks (and dw's bits) are the same however the rows are split.
  const int64_t slice = block_rows(rows);
  const int64_t per = rows_per_piece(ctx, std::max<int64_t>(C * dtype_size(x.dtype), 4), slice, what);
  for (int64_t r0 = 0; r0 < rows; r0 += per) {
    const int64_t n = std::min(per, rows - r0);
    const auto [xb, x_skip] = aligned_span(ctx, x, r0 * C, n * C);
    const auto [rb, r_skip] = aligned_span(ctx, rstd, r0, n);
    const auto [dyb, dy_skip] = aligned_span(ctx, dy, r0 * C, n * C);
    const auto [dxb, dx_skip] = aligned_span(ctx, dx, r0 * C, n * C);
    const uint32_t block0 = uint32_t(r0 / slice);
    Push push{uint32_t(n), uint32_t(C), uint32_t(slice), block0, x_skip, w_skip, r_skip, dy_skip, dx_skip, p_skip};
    p.dispatch(k, {in(xb), in(wb), in(rb), in(dyb), vkm::out(dxb), inout(pb)}, push, uint32_t((n + slice - 1) / slice));
  }

  struct SumPush {
    uint32_t C, blocks, accumulate, p_skip, dw_skip;
  };
  const Kernel& sum = ctx.kernel({"rmsnorm.dw_sum", 2, sizeof(SumPush), {kGroupSize}});
  const auto [dwb, dw_skip] = aligned_span(ctx, dw, 0, C);
  p.dispatch(sum, {in(pb), accumulate ? inout(dwb) : vkm::out(dwb)},
             SumPush{uint32_t(C), uint32_t(blocks(rows)), accumulate, p_skip, dw_skip}, stride_groups(C));
}

}  // namespace vkm::ops
