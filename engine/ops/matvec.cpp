#include "engine/ops/matvec.hpp"

#include <algorithm>
#include <string>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

constexpr uint32_t kThreads = 64;
constexpr uint32_t kCols = 4;  // columns of Y per workgroup (split_k) or thread (by_column)

// Whether by_column can load 16 bytes at a time (4 f32 or 8 f16): no row of X or W straddles a load, and each
// binding's first element starts one.
bool block_loads(int64_t K, uint32_t x_skip, uint32_t w_skip, DType t) {
  const uint32_t per_block = 16 / uint32_t(dtype_size(t));
  return K % per_block == 0 && x_skip % per_block == 0 && w_skip % per_block == 0;
}

}  // namespace

void matvec(Program& p, const Tensor& X, const Tensor& W, const Tensor& Y, bool accumulate, MatvecKernel kernel) {
  auto fail = [&](const std::string& why) {
    throw Error("matvec: " + why + " (X " + X.describe() + ", W " + W.describe() + ", Y " + Y.describe() + ")");
  };
  if (!X || !W || !Y) fail("a tensor is not allocated");
  if ((X.dtype != DType::f32 && X.dtype != DType::f16) || W.dtype != X.dtype || Y.dtype != DType::f32)
    fail("X and W must be both f32 or both f16, Y f32");
  if (W.rank() != 2 || W.numel() == 0 || X.rank() < 1 || Y.rank() != X.rank() || X.dim(-1) != W.dim(1) ||
      Y.dim(-1) != W.dim(0) || !std::equal(X.shape.begin(), X.shape.end() - 1, Y.shape.begin()))
    fail("want W [N,K], X [...,K] and Y [...,N] with the same leading dims");
  if (X.numel() == 0) fail("no rows");
  if (Y.overlaps(X) || Y.overlaps(W)) fail("Y overlaps an input");
  const int64_t N = W.dim(0), K = W.dim(1), M = X.numel() / K;
  const uint32_t rows = uint32_t(std::min(M, kMatvecRows));
  Context& ctx = p.context();
  require_storage(ctx, X.dtype, "matvec");
  // A CPU device runs a workgroup's threads as SIMD lanes: there each thread takes whole columns.
  const bool by_column = kernel == MatvecKernel::by_column ||
                         (kernel == MatvecKernel::automatic && ctx.info().vk_type == VK_PHYSICAL_DEVICE_TYPE_CPU);
  const int64_t per_group = by_column ? kThreads * kCols : kCols;
  const int64_t groups_n = (N + per_group - 1) / per_group, groups_m = (M + rows - 1) / rows;
  const uint32_t* max_groups = ctx.info().max_workgroup_count;
  if (groups_n > max_groups[0] || groups_m > max_groups[1]) fail("too many rows or columns for one dispatch");

  auto [x, x_skip] = aligned_span(ctx, X, 0, X.numel());
  auto [w, w_skip] = aligned_span(ctx, W, 0, W.numel());
  auto [y, y_skip] = aligned_span(ctx, Y, 0, Y.numel());
  struct Push {
    uint32_t M, N, K, accumulate, x_skip, w_skip, y_skip;
  };
  const Push push{uint32_t(M), uint32_t(N), uint32_t(K), accumulate, x_skip, w_skip, y_skip};
  const std::string variant =
      std::string(by_column ? "matvec.by_column" : "matvec.split_k") + (X.dtype == DType::f16 ? "_f16" : "");
  const Kernel& k =
      ctx.kernel({variant, 3, sizeof(Push), {kThreads, rows, kCols, block_loads(K, x_skip, w_skip, X.dtype)}});
  p.dispatch(k, {in(x), in(w), accumulate ? inout(y) : out(y)}, push, uint32_t(groups_n), uint32_t(groups_m), 1,
             "matvec " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
}

}  // namespace vkm::ops
