#include "engine/ops/copy.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "engine/memory.hpp"
#include "tests/reference/cast.hpp"
#include "tests/reference/copy.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// Copies are exact: the poison (NaN) is left exactly where the reference keeps it, values equal elsewhere.
size_t mismatches(const ref::Vec& got, const ref::Vec& want) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += std::isnan(want[i]) ? !std::isnan(got[i]) : got[i] != want[i];
  return bad + (got.size() != want.size());
}

class CopyTest : public testing::TestWithParam<int64_t> {};

// Whole tensors, 32- and 16-bit; the dtypes may differ where the element sizes agree.
TEST_P(CopyTest, Whole) {
  const int64_t n = GetParam();
  Arena arena(ctx(), "copy");
  for (auto [from, to] : {std::pair{DType::f32, DType::f32}, {DType::f16, DType::bf16}}) {
    Tensor src = arena.alloc(from, {n}), dst = arena.alloc(to, {n});
    std::vector<uint8_t> in = ref::store(test::to_double(test::random_floats(n, uint32_t(n))), from);
    ctx().write(src, in);
    Program p(ctx(), "copy");
    ops::copy(p, src, dst);
    SCOPED_TRACE(testing::Message() << dtype_name(from) << " -> " << dtype_name(to));
    EXPECT_EQ(test::run_twice_bytes({dst}, {}, [&] { ctx().wait(ctx().submit(p)); })[0], in);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, CopyTest, testing::Values(1, 7, 33, 64, 257, 100003));

struct Region {
  int64_t rows, cols, src_ld, dst_ld;
  int64_t src_start, dst_start;  // where the views begin in their allocations, in elements: often unaligned
};

// Copies `r` between views of freshly allocated tensors of dtype t, the destination poisoned, twice; the
// whole destination allocation must match the reference and both runs agree bit for bit.
void check_copy_2d(DType t, const Region& r, uint32_t seed) {
  SCOPED_TRACE(std::string(dtype_name(t)) + " region " + std::to_string(r.rows) + "x" + std::to_string(r.cols) +
               ", ld " + std::to_string(r.src_ld) + " -> " + std::to_string(r.dst_ld));
  const int64_t src_n = r.src_start + (r.rows - 1) * r.src_ld + r.cols + 5;
  const int64_t dst_n = r.dst_start + (r.rows - 1) * r.dst_ld + r.cols + 6;
  Arena arena(ctx(), "copy_2d");
  Tensor src = arena.alloc(t, {src_n}), dst = arena.alloc(t, {dst_n});
  ref::Vec x = test::stored(test::random_floats(src_n, seed), t);
  test::write_values(src, x);

  ref::Vec want(r.dst_start, NAN);
  ref::Vec region = ref::copy_2d(ref::Vec(x.begin() + r.src_start, x.end()), ref::Vec(dst_n - r.dst_start, NAN),
                                 r.rows, r.cols, r.src_ld, r.dst_ld);
  want.insert(want.end(), region.begin(), region.end());

  Program p(ctx(), "copy_2d");
  ops::copy_2d(p, src.view(r.src_start, {src_n - r.src_start}), dst.view(r.dst_start, {dst_n - r.dst_start}), r.rows,
               r.cols, r.src_ld, r.dst_ld);
  const auto first = test::run_twice_bytes({dst}, {}, [&] { ctx().wait(ctx().submit(p)); });
  EXPECT_EQ(mismatches(ref::load(first[0], t), want), 0u);
}

TEST(Copy2d, StridedRegions) {
  const Region regions[] = {
      {1, 1, 1, 1, 0, 0},          {7, 5, 9, 6, 3, 1},       // unaligned starts on both sides
      {33, 64, 64, 100, 0, 17},    {64, 33, 40, 33, 5, 0},   // contiguous on one side
      {257, 31, 0, 32, 2, 0},      {1001, 129, 257, 130, 1, 3},  // src_ld 0 repeats one row; larger, odd
  };
  uint32_t seed = 1;
  for (DType t : {DType::f32, DType::f16})
    for (const Region& r : regions) check_copy_2d(t, r, seed++);
}

// Two heads side by side in one program: the use that concatenates heads.
TEST(Copy2d, Concatenates) {
  const int64_t rows = 37, dh = 12;
  Arena arena(ctx(), "concat");
  Tensor a = arena.alloc(DType::f16, {rows, dh}), b = arena.alloc(DType::f16, {rows, dh});
  Tensor both = arena.alloc(DType::f16, {rows, 2 * dh});
  ref::Vec xa = test::stored(test::random_floats(rows * dh, 11), DType::f16);
  ref::Vec xb = test::stored(test::random_floats(rows * dh, 12), DType::f16);
  test::write_values(a, xa);
  test::write_values(b, xb);
  test::poison(both);
  test::run([&](Program& p) {
    ops::copy_2d(p, a, both, rows, dh, dh, 2 * dh);
    ops::copy_2d(p, b, both.flat().view(dh, {rows * 2 * dh - dh}), rows, dh, dh, 2 * dh);
  });
  ref::Vec want = ref::copy_2d(xa, ref::Vec(rows * 2 * dh, NAN), rows, dh, dh, 2 * dh);
  ref::Vec right = ref::copy_2d(xb, ref::Vec(want.begin() + dh, want.end()), rows, dh, dh, 2 * dh);
  std::copy(right.begin(), right.end(), want.begin() + dh);
  EXPECT_EQ(mismatches(test::read_values(both), want), 0u);
}

// Past maxStorageBufferRange copy_2d runs in pieces of whole rows: every row must arrive.
TEST(Copy2d, BeyondOneBinding) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t src_ld = 4100, cols = 3001, rows = int64_t(range / 4) / src_ld + 2;
  check_copy_2d(DType::f32, {rows, cols, src_ld, cols, 0, 0}, 99);
}

TEST(Copy2d, ErrorsNameTheTensors) {
  Arena arena(ctx(), "copy-errors");
  Tensor src = arena.alloc(DType::f32, {10, 8}), dst = arena.alloc(DType::f32, {10, 8});
  Tensor half = arena.alloc(DType::f16, {80});
  Program p(ctx(), "copy-errors");
  auto message = [&](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const std::string s = src.describe(), d = dst.describe();
  for (std::string m : {
           message([&] { ops::copy_2d(p, src, dst, 10, 8, 9, 8); }),     // runs past the source's end
           message([&] { ops::copy_2d(p, src, dst, 10, 8, 8, 9); }),     // runs past the destination's end
           message([&] { ops::copy_2d(p, src, dst, 10, 8, 8, 7); }),     // destination rows overlap
           message([&] { ops::copy_2d(p, src, dst, -1, 8, 8, 8); }),     // negative
           message([&] { ops::copy_2d(p, src, half, 1, 8, 8, 8); }),     // element sizes differ
           message([&] { ops::copy_2d(p, src, src.flat().view(4, {40}), 4, 4, 8, 8); }),  // regions overlap
           message([&] { ops::copy(p, src, dst.flat().view(0, {79})); }),  // element counts differ
       }) {
    EXPECT_NE(m.find(s), std::string::npos) << m;
  }
  EXPECT_NO_THROW(ops::copy_2d(p, src, dst, 0, 8, 8, 8));  // an empty region is nothing to do
}

}  // namespace
}  // namespace vkm
