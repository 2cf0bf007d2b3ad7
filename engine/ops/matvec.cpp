#include "engine/ops/matvec.hpp"

#include <algorithm>
#include <string>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

constexpr uint32_t kThreads = 64;
constexpr uint32_t kCols = 4;  // columns of Y per workgroup (split_k) or thread (by_column)

// The widest load, 4 or 1 elements, that no row of X or W straddles and that starts aligned in each binding.
uint32_t load_width(int64_t K, uint32_t x_skip, uint32_t w_skip) { return K % 4 == 0 && x_skip % 4 == 0 && w_skip % 4 == 0 ? 4 : 1; }

}  // namespace

void matvec(Program& p, const Tensor& X, const Tensor& W, const Tensor& Y, bool accumulate, MatvecKernel kernel) {
  auto fail = [&](const std::string& why) {
    throw Error("matvec: " + why + " (X " + X.describe() + ", W " + W.describe() + ", Y " + Y.describe() + ")");
  };
  if (!X || !W || !Y) fail("a tensor is not allocated");
  if (X.dtype != DType::f32 || W.dtype != DType::f32 || Y.dtype != DType::f32) fail("X, W and Y must be f32");
  if (W.rank() != 2 || W.numel() == 0 || X.rank() < 1 || Y.rank() != X.rank() || X.dim(-1) != W.dim(1) ||
      Y.dim(-1) != W.dim(0) || !std::equal(X.shape.begin(), X.shape.end() - 1, Y.shape.begin()))
    fail("want W [N,K], X [...,K] and Y [...,N] with the same leading dims");
  if (X.numel() == 0) fail("no rows");
  if (Y.overlaps(X) || Y.overlaps(W)) fail("Y overlaps an input");
  const int64_t N = W.dim(0), K = W.dim(1), M = X.numel() / K;
  const uint32_t rows = uint32_t(std::min(M, kMatvecRows));
  Context& ctx = p.context();
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
  const Kernel& k = ctx.kernel({by_column ? "matvec.by_column" : "matvec.split_k", 3, sizeof(Push),
                                {kThreads, rows, kCols, load_width(K, x_skip, w_skip)}});
  p.dispatch(k, {in(x), in(w), accumulate ? inout(y) : out(y)}, push, uint32_t(groups_n), uint32_t(groups_m), 1,
             "matvec " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K));
}

}  // namespace vkm::ops
