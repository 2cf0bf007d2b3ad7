// matvec is a linear layer for few rows: its reference is ref::linear (tests/reference/matmul.hpp).
#include "engine/ops/matvec.hpp"

#include <string>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

constexpr double kTol = 1e-5;

using Params = std::tuple<int64_t, int64_t, int64_t, DType>;
class MatvecTest : public testing::TestWithParam<Params> {};

// Overwritten, then accumulated onto random values; every tensor at an aligned offset (where K allows, 16-byte
// loads: 4 f32 or 8 f16, so K = 20 takes them in f32 only), then at an odd one. X and W f16 are compared with the
// double product of their f16 values: the device sums those exact products in fp32, so f32's bound holds.
TEST_P(MatvecTest, MatchesReference) {
  const auto [M, N, K, type] = GetParam();
  if (!ops::has_storage(ctx(), type)) GTEST_SKIP() << "no 16-bit support on " << ctx().info().name;
  Arena arena(ctx(), "matvec");
  auto view = [&](DType t, Shape s, int64_t skip) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return arena.alloc(t, {n + skip}).view(skip, s);
  };
  const auto xv = test::random_floats(M * K, 1), wv = test::random_floats(N * K, 2), y0 = test::random_floats(M * N, 3);
  const ref::Vec product = ref::linear(test::stored(xv, type), test::stored(wv, type), M, N, K);
  for (ops::MatvecKernel kernel : {ops::MatvecKernel::by_column, ops::MatvecKernel::split_k})
    for (int variant = 0; variant < 4; ++variant) {
      const bool odd = variant >= 2, acc = variant % 2;
      SCOPED_TRACE(testing::Message() << (kernel == ops::MatvecKernel::split_k ? "split_k" : "by_column") << ", "
                                      << (acc ? "accumulate" : "overwrite") << (odd ? ", odd offsets" : ""));
      Tensor x = view(type, {M, K}, 3 * odd), w = view(type, {N, K}, odd), y = view(DType::f32, {M, N}, 5 * odd);
      auto got = test::run_twice(
          {y},
          [&] {
            test::write_values(x, xv);
            test::write_values(w, wv);
            if (acc) ctx().write(y, y0);
          },
          [&](Program& p) { ops::matvec(p, x, w, y, acc, kernel); });
      ref::Vec want = product;
      if (acc)
        for (size_t i = 0; i < want.size(); ++i) want[i] += y0[i];
      EXPECT_LE(test::rel_l2(got[0], want), kTol);
    }
}

std::string name_of(const testing::TestParamInfo<Params>& info) {
  const auto [M, N, K, type] = info.param;
  return "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K) +
         (type == DType::f16 ? "_f16" : "_f32");
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatvecTest,
                         testing::Combine(testing::Values(1, 3, 8, 11), testing::Values(1, 5, 130),
                                          testing::Values(1, 7, 20, 64, 515), testing::Values(DType::f32, DType::f16)),
                         name_of);

// Leading dims as linear() takes them: x [B, T, K].
TEST(MatvecShapes, LeadingDims) {
  Arena arena(ctx(), "matvec");
  const int64_t B = 2, T = 1, K = 33, N = 9;
  Tensor x = arena.alloc(DType::f32, {B, T, K}), w = arena.alloc(DType::f32, {N, K}), y = arena.alloc(DType::f32, {B, T, N});
  const auto xv = test::random_floats(B * K, 4), wv = test::random_floats(N * K, 5);
  ctx().write(x, xv);
  ctx().write(w, wv);
  test::poison(y);
  test::run([&](Program& p) { ops::matvec(p, x, w, y); });
  EXPECT_LE(test::rel_l2(test::read_values(y), ref::linear(test::to_double(xv), test::to_double(wv), B, N, K)), kTol);
}

TEST(MatvecErrors, RejectsBadShapesAndTypes) {
  Arena arena(ctx(), "errors");
  Tensor x = arena.alloc(DType::f32, {2, 8}), w = arena.alloc(DType::f32, {4, 8}), y = arena.alloc(DType::f32, {2, 4});
  Program p(ctx(), "errors");
  test::expect_error("same leading dims", [&] { ops::matvec(p, x, w, arena.alloc(DType::f32, {2, 5})); });
  test::expect_error("same leading dims", [&] { ops::matvec(p, x, arena.alloc(DType::f32, {4, 9}), y); });
  test::expect_error("both f32 or both f16, Y f32", [&] { ops::matvec(p, x, w, arena.alloc(DType::f16, {2, 4})); });
  test::expect_error("both f32 or both f16", [&] { ops::matvec(p, x, arena.alloc(DType::f16, {4, 8}), y); });
  test::expect_error("both f32 or both f16", [&] { ops::matvec(p, x, arena.alloc(DType::bf16, {4, 8}), y); });
  test::expect_error("overlaps", [&] { ops::matvec(p, x, w, x.flat().view(0, {2, 4})); });
  EXPECT_NO_THROW(ops::matvec(p, x, w, y));
}

}  // namespace
}  // namespace vkm
