// rope_at: rope with each sequence's start position read on the device. Its reference is ref::rope
// (tests/reference/rope.hpp), row by row at each row's position.
#include <string>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/rope.hpp"
#include "tests/reference/rope.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// Sequences from position 0, in the middle, with padding (-1) in front, and running past the table.
TEST(RopeAt, PositionsFromTheDevice) {
  const int64_t B = 4, T = 5, H = 3, D = 16, positions = 20;
  const std::vector<int32_t> at{0, 1, 2, 3, 4, 7, 8, 9, 10, 11, -1, -1, -1, 0, 1, 17, 18, 19, 20, 21};
  for (DType dtype : {DType::f32, DType::f16, DType::bf16}) {
    if (!ops::has_storage(ctx(), dtype)) continue;
    SCOPED_TRACE(dtype_name(dtype));
    Arena arena(ctx(), "rope_at");
    Tensor x = arena.alloc(dtype, {B, T, H, D}), y = arena.alloc(dtype, {B, T, H, D});
    Tensor in_place = arena.alloc(dtype, {B, T, H, D});
    Tensor table = arena.alloc(DType::f32, {positions, D / 2, 2}), pos = arena.alloc(DType::i32, {B, T});
    ctx().write(table, ops::rope_table(positions, D, 1e4));
    const auto xv = test::random_floats(x.numel(), 1);
    auto got = test::run_twice(
        {y, in_place},
        [&] {
          test::write_values(x, xv);
          test::write_values(in_place, xv);
          ctx().write(pos, at);
        },
        [&](Program& p) {
          ops::rope_at(p, x, y, table, pos);
          ops::rope_at(p, in_place, in_place, table, pos);
        });
    const ref::Vec xs = test::stored(xv, dtype);
    ref::Vec want(xs.size(), 0.0);
    const int64_t row = H * D;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t position = at[b * T + t];
        if (position < 0 || position >= positions) continue;  // zeros
        const ref::Vec one(xs.begin() + (b * T + t) * row, xs.begin() + (b * T + t + 1) * row);
        const ref::Vec turned = ref::rope(one, {1, 1, H, D, position, 1e4});
        std::copy(turned.begin(), turned.end(), want.begin() + (b * T + t) * row);
      }
    // One rounding on store: bf16 keeps 8 significant bits to f16's 11.
    const double tol = dtype == DType::bf16 ? 1.5e-2 : dtype == DType::f16 ? 5e-3 : 1e-5;
    EXPECT_LE(test::rel_l2(got[0], want), tol);
    EXPECT_LE(test::rel_l2(got[1], want), tol);
  }
}

TEST(RopeAt, RejectsBadPositions) {
  Arena arena(ctx(), "errors");
  Tensor x = arena.alloc(DType::f32, {2, 1, 2, 8}), table = arena.alloc(DType::f32, {4, 4, 2});
  Program p(ctx(), "errors");
  test::expect_error("positions must be i32 [B, T] = [2, 1]",
                     [&] { ops::rope_at(p, x, x, table, arena.alloc(DType::i32, {2})); });
  test::expect_error("positions must be i32", [&] { ops::rope_at(p, x, x, table, arena.alloc(DType::f32, {2, 1})); });
  test::expect_error("positions is not allocated", [&] { ops::rope_at(p, x, x, table, Tensor{}); });
  test::expect_error("overlaps the table or positions",
                     [&] { ops::rope_at(p, x, x, table, x.flat().view(0, {2, 1}).as(DType::i32)); });
  EXPECT_NO_THROW(ops::rope_at(p, x, x, table, arena.alloc(DType::i32, {2, 1})));
}

}  // namespace
}  // namespace vkm
