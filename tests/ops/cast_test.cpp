#include "engine/ops/cast.hpp"

#include <bit>
#include <cmath>
#include <iomanip>

#include "engine/error.hpp"
#include "engine/memory.hpp"
#include "tests/reference/cast.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

constexpr DType kFloats[] = {DType::f32, DType::f16, DType::bf16};

// Signed zeros, infinities and NaN; rounding ties, each pair going down then up to the even neighbour:
// f16 normals, f16 subnormals (and the one into the smallest normal), bf16 normals, bf16 among fp32
// subnormals; the ends of the f16 range and of fp32.
std::vector<float> specials() {
  auto bits = [](uint32_t b) { return std::bit_cast<float>(b); };
  return {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN,
          1 + 0x1p-11f, 1 + 0x3p-11f, -(1 + 0x3p-11f),
          0x1p-25f, 0x3p-25f, -0x3p-25f, 0x1p-14f - 0x1p-25f,
          1 + 0x1p-8f, 1 + 0x3p-8f, -(1 + 0x3p-8f),
          bits(0x00008000), bits(0x00018000),
          0x1p-24f, 0x1p-14f, 65504.0f, 65519.0f, 65520.0f, -65520.0f, 1e30f, bits(1), bits(0x7f7fffff)};
}

// The specials, then seeded values of four magnitudes in turn: around one, beyond the f16 range, f16
// subnormals, fp32 subnormals.
ref::Vec inputs(size_t n, uint32_t seed) {
  const float ranges[] = {1.0f, 1e5f, 1e-6f, 2e-38f};
  std::vector<std::vector<float>> random;
  for (float r : ranges) random.push_back(test::random_floats(n, seed++, -r, r));
  std::vector<float> v = specials();
  v.resize(std::min(v.size(), n));
  for (size_t i = v.size(); i < n; ++i) v.push_back(random[i % 4][i]);
  return test::to_double(v);
}

// NaN exactly where the reference has it; elsewhere the same value with the same sign (-0 is not +0),
// which makes the relative L2 error over those elements 0.
void expect_exact(const ref::Vec& got, const ref::Vec& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ref::Vec g, w;
  size_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    bool same = std::isnan(want[i]) ? std::isnan(got[i])
                                    : got[i] == want[i] && std::signbit(got[i]) == std::signbit(want[i]);
    if (!same && wrong++ == 0)
      ADD_FAILURE() << what << ": element " << i << " is " << std::setprecision(17) << got[i] << ", want "
                    << want[i];
    if (!std::isnan(want[i])) {
      g.push_back(got[i]);
      w.push_back(want[i]);
    }
  }
  EXPECT_EQ(wrong, 0u) << what << ": elements differ from the reference";
  EXPECT_EQ(test::rel_l2(g, w), 0.0) << what;
}

class CastTest : public testing::TestWithParam<int64_t> {};

TEST_P(CastTest, EveryPairRoundsExactly) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "cast");
  uint32_t seed = uint32_t(n);
  for (DType from : kFloats)
    for (DType to : kFloats) {
      const std::string what = std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to));
      SCOPED_TRACE(what);
      std::vector<uint8_t> in = ref::store(inputs(n, seed += 4), from);
      Tensor src = arena.alloc(from, {n}), dst = arena.alloc(to, {n});
      ctx().write(src, in);
      Program p(ctx(), "cast");
      ops::cast(p, src, dst);
      const auto first = test::run_twice_bytes({dst}, {}, [&] { ctx().wait(ctx().submit(p)); });
      expect_exact(ref::load(first[0], to), ref::cast(ref::load(in, from), to), what);
    }
}

INSTANTIATE_TEST_SUITE_P(Sizes, CastTest, testing::Values(1, 7, 33, 64, 257, 100003));

// Past maxStorageBufferRange the cast runs in pieces: every element of every piece must be written.
TEST(CastLarge, BeyondOneBinding) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t n = int64_t(range / 4) + 4097;  // f32 elements: one whole piece and a ragged one
  Arena arena(ctx(), "cast-large");
  Tensor src = arena.alloc(DType::f32, {n}), dst = arena.alloc(DType::bf16, {n});
  ref::Vec x = test::to_double(test::random_floats(n, 5, -1e5f, 1e5f));
  test::write_values(src, x);
  test::poison(dst);
  test::run([&](Program& p) { ops::cast(p, src, dst); });
  expect_exact(ref::load(ctx().read<uint8_t>(dst), DType::bf16), ref::cast(x, DType::bf16), "f32 -> bf16");
}

TEST(CastErrors, NameTheTensors) {
  Arena arena(ctx(), "cast-errors");
  Tensor f = arena.alloc(DType::f32, {8}), i = arena.alloc(DType::i32, {8}), h9 = arena.alloc(DType::f16, {9});
  Tensor aliased{f.buffer, f.offset, DType::f16, {8}};
  Program p(ctx(), "cast-errors");
  for (const Tensor& bad : {i, h9, aliased}) {  // not a float dtype; element counts differ; overlap
    try {
      ops::cast(p, f, bad);
      ADD_FAILURE() << "cast to " << bad.describe() << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad.describe()), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(ops::cast(p, f, arena.alloc(DType::bf16, {2, 4})));  // shapes may differ
}

}  // namespace
}  // namespace vkm
