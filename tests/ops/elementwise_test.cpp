#include "engine/ops/elementwise.hpp"

#include <cstring>
#include <functional>

#include "engine/error.hpp"
#include "tests/reference/elementwise.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// Runs `record` twice, each time after `prepare` (which writes the inputs and poisons the outputs), expects
// `result` bit-identical both times, and returns it.
std::vector<double> run_twice(const std::function<void()>& prepare, const std::function<void(Program&)>& record,
                              const Tensor& result) {
  std::vector<uint32_t> bits[2];
  for (auto& b : bits) {
    prepare();
    test::run(record);
    b = ctx().read<uint32_t>(result);
  }
  EXPECT_TRUE(bits[0] == bits[1]) << "two runs gave different bits";
  std::vector<double> out(bits[0].size());
  for (size_t i = 0; i < out.size(); ++i) {
    float f;
    std::memcpy(&f, &bits[0][i], 4);
    out[i] = f;
  }
  return out;
}

class ElementwiseTest : public testing::TestWithParam<int64_t> {};

// rel_l2 is infinite where the result holds a NaN, so these bounds also catch unwritten elements.
TEST_P(ElementwiseTest, Add) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "add");
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> av = test::random_floats(n, 1), bv = test::random_floats(n, 2);
  std::vector<double> got = run_twice(
      [&] {
        ctx().write(a, av);
        ctx().write(b, bv);
        test::poison(o);
      },
      [&](Program& p) { ops::add(p, a, b, o); }, o);
  EXPECT_LE(test::rel_l2(got, ref::add(test::to_double(av), test::to_double(bv))), 1e-5);
}

TEST_P(ElementwiseTest, Scale) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "scale");
  Tensor x = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> xv = test::random_floats(n, 3);
  const float alpha = -1.7f;
  std::vector<double> got = run_twice(
      [&] {
        ctx().write(x, xv);
        test::poison(o);
      },
      [&](Program& p) { ops::scale(p, x, alpha, o); }, o);
  EXPECT_LE(test::rel_l2(got, ref::scale(test::to_double(xv), alpha)), 1e-5);
}

// a = a + b, then a = alpha * a, in one program: the second op must see the first's result.
TEST_P(ElementwiseTest, InPlace) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "inplace");
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n});
  std::vector<float> av = test::random_floats(n, 4), bv = test::random_floats(n, 5);
  const float alpha = 0.3f;
  std::vector<double> got = run_twice(
      [&] {
        ctx().write(a, av);
        ctx().write(b, bv);
      },
      [&](Program& p) {
        ops::add(p, a, b, a);
        ops::scale(p, a, alpha, a);
      },
      a);
  EXPECT_LE(test::rel_l2(got, ref::scale(ref::add(test::to_double(av), test::to_double(bv)), alpha)), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ElementwiseTest, testing::Values(1, 7, 33, 64, 257, 1000003));

// Over maxStorageBufferRange (128 MiB on lavapipe), so each op runs in pieces. Integer-valued inputs keep
// every result exact, and b varies with the high bits of the index, so a misplaced piece shows.
TEST(ElementwiseLarge, AddThenScaleInPieces) {
  const int64_t n = 36ll << 20;  // 144 MiB of f32
  Arena arena(ctx(), "big", MemoryKind::device, 160ull << 20);
  Tensor a = arena.alloc(DType::f32, {n}), b = arena.alloc(DType::f32, {n}), o = arena.alloc(DType::f32, {n});
  std::vector<float> av(n), bv(n);
  for (int64_t i = 0; i < n; ++i) {
    av[i] = float(i % 4096);
    bv[i] = float(i / 4096);
  }
  ctx().write(a, av);
  ctx().write(b, bv);
  test::poison(o);
  test::run([&](Program& p) {
    ops::add(p, a, b, o);
    ops::scale(p, o, 0.5f, o);
  });
  std::vector<float> got = ctx().read<float>(o);
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += got[i] != (av[i] + bv[i]) * 0.5f;
  EXPECT_EQ(wrong, 0);
}

TEST(ElementwiseErrors, RejectsMismatchedOrOverlappingTensors) {
  Arena arena(ctx(), "errors");
  Tensor a = arena.alloc(DType::f32, {64}), b = arena.alloc(DType::f32, {65}), i = arena.alloc(DType::i32, {64});
  Program p(ctx(), "errors");
  EXPECT_THROW(ops::add(p, a, b, a), Error);
  EXPECT_THROW(ops::scale(p, i, 2.0f, a), Error);
  EXPECT_THROW(ops::scale(p, a.view(0, {32}), 2.0f, a.view(16, {32})), Error);
  EXPECT_NO_THROW(ops::scale(p, a.reshape({8, 8}), 2.0f, a));  // same elements in another shape
}

}  // namespace
}  // namespace vkm
