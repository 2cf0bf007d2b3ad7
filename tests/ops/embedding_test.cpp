#include "engine/ops/embedding.hpp"

#include <climits>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/embedding.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;
using test::expect_error;

// Ids in [0, V) with many repeats: half come from three hot ids, the rest are uniform.
std::vector<int32_t> random_ids(int64_t n, int64_t V, uint32_t seed) {
  std::mt19937 rng(seed);
  const int32_t hot[] = {0, int32_t(V / 2), int32_t(V - 1)};
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = rng() % 2 ? hot[rng() % 3] : int32_t(rng() % V);
  return ids;
}

class EmbeddingTest : public testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

// A gather is exact: every output equals its table entry as the output dtype holds it.
TEST_P(EmbeddingTest, Forward) {
  const auto [V, C, N] = GetParam();
  Arena arena(ctx(), "embedding");
  const std::vector<float> table = test::random_floats(V * C, 1);
  const std::vector<int32_t> ids = random_ids(N, V, 2);
  Tensor I = arena.alloc(DType::i32, {N});
  ctx().write(I, ids);
  for (auto [table_type, out_type] :
       {std::pair{DType::f32, DType::f32}, std::pair{DType::f32, DType::f16}, std::pair{DType::f16, DType::f16},
        std::pair{DType::f32, DType::bf16}, std::pair{DType::bf16, DType::bf16}}) {
    if (!ops::has_storage(ctx(), out_type)) continue;
    SCOPED_TRACE(testing::Message() << "table " << dtype_name(table_type) << ", out " << dtype_name(out_type));
    Tensor T = arena.alloc(table_type, {V, C}), O = arena.alloc(out_type, {N, C});
    test::write_values(T, table);
    const ref::Vec want = ref::cast(ref::embedding(test::stored(table, table_type), ids, V, C), out_type);
    ref::Vec got = test::run_twice({O}, {}, [&](Program& p) { ops::embedding(p, T, I, O); })[0];
    EXPECT_EQ(test::rel_l2(got, want), 0.0);
  }
}

// dtable starts random and accumulates; dout f32, or f16 or bf16 fed to the reference as stored.
TEST_P(EmbeddingTest, Backward) {
  const auto [V, C, N] = GetParam();
  Arena arena(ctx(), "embedding");
  const std::vector<float> initial = test::random_floats(V * C, 3), dout = test::random_floats(N * C, 4);
  const std::vector<int32_t> ids = random_ids(N, V, 5);
  Tensor I = arena.alloc(DType::i32, {N}), dT = arena.alloc(DType::f32, {V, C});
  ctx().write(I, ids);
  for (DType grad_type : {DType::f32, DType::f16, DType::bf16}) {
    if (!ops::has_storage(ctx(), grad_type)) continue;
    SCOPED_TRACE(testing::Message() << "dout " << dtype_name(grad_type));
    Tensor dO = arena.alloc(grad_type, {N, C});
    test::write_values(dO, dout);
    ref::Vec want = ref::embedding_backward(ids, test::stored(dout, grad_type), V, C);
    for (size_t i = 0; i < want.size(); ++i) want[i] += initial[i];
    ref::Vec got = test::run_twice({dT}, [&] { ctx().write(dT, initial); },
                                   [&](Program& p) { ops::embedding_backward(p, I, dO, dT); })[0];
    EXPECT_LE(test::rel_l2(got, want), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingTest,
                         testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(7, 7, 7),
                                         std::make_tuple(1, 64, 33), std::make_tuple(257, 257, 33),
                                         std::make_tuple(7, 1, 257), std::make_tuple(257, 7, 257),
                                         std::make_tuple(6400, 64, 7), std::make_tuple(6400, 512, 257)),
                         [](const auto& info) {
                           return "V" + std::to_string(std::get<0>(info.param)) + "_C" +
                                  std::to_string(std::get<1>(info.param)) + "_N" +
                                  std::to_string(std::get<2>(info.param));
                         });

// Ids that fall outside the table: the ones just past each end and the extremes of i32.
const int32_t kBadIds[] = {-1, 7, INT_MIN, INT_MAX};

// The reference backward is the gradient of the reference forward: sum(out * dout) is linear in the table,
// so central differences match it to rounding. Bad ids are among the ids, and get no gradient.
TEST(EmbeddingReference, BackwardIsTheNumericalGradient) {
  const int64_t V = 7, C = 5;
  std::vector<int32_t> ids = random_ids(33, V, 6);
  ids.insert(ids.begin() + 5, std::begin(kBadIds), std::end(kBadIds));
  const ref::Vec table = test::to_double(test::random_floats(V * C, 7));
  const ref::Vec dout = test::to_double(test::random_floats(ids.size() * C, 8));
  auto loss = [&](const ref::Vec& t) {
    ref::Vec out = ref::embedding(t, ids, V, C);
    double s = 0;
    for (size_t i = 0; i < out.size(); ++i) s += out[i] * dout[i];
    return s;
  };
  const double h = 1e-3;
  ref::Vec numerical(V * C);
  for (int64_t i = 0; i < V * C; ++i) {
    ref::Vec up = table, down = table;
    up[i] += h;
    down[i] -= h;
    numerical[i] = (loss(up) - loss(down)) / (2 * h);
  }
  EXPECT_LE(test::rel_l2(ref::embedding_backward(ids, dout, V, C), numerical), 1e-9);
}

// Out-of-range ids give zero rows, no gradient, and are counted (the count accumulates across calls).
// Every tensor is a view at an offset that is not storage-aligned, so the shaders' skips matter.
TEST(EmbeddingBadIds, ZeroRowsNoGradientCounted) {
  const int64_t V = 7, C = 9;
  std::vector<int32_t> ids = random_ids(20, V, 9);
  ids.insert(ids.begin() + 3, std::begin(kBadIds), std::end(kBadIds));
  const int64_t N = int64_t(ids.size());
  Arena arena(ctx(), "embedding");
  Tensor T = arena.alloc(DType::f32, {V * C + 3}).view(3, {V, C});
  Tensor I = arena.alloc(DType::i32, {N + 1}).view(1, {N});
  Tensor O = arena.alloc(DType::f32, {N * C + 5}).view(5, {N, C});
  Tensor dT = arena.alloc(DType::f32, {V * C + 1}).view(1, {V, C});
  Tensor count = arena.alloc(DType::u32, {2}).view(1, {1});
  const std::vector<float> table = test::random_floats(V * C, 10), dout = test::random_floats(N * C, 11);
  const std::vector<float> initial = test::random_floats(V * C, 12);
  ctx().write(T, table);
  ctx().write(I, ids);
  ctx().write(count, std::vector<uint32_t>{0});
  ref::Vec forward = test::run_twice({O}, {}, [&](Program& p) { ops::embedding(p, T, I, O); })[0];
  EXPECT_EQ(test::rel_l2(forward, ref::embedding(test::to_double(table), ids, V, C)), 0.0);
  for (int64_t r = 3; r < 7; ++r)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(forward[r * C + c], 0.0) << "position " << r;

  Tensor dO = O;  // the forward's output serves as the gradient
  ref::Vec want = ref::embedding_backward(ids, forward, V, C);
  for (size_t i = 0; i < want.size(); ++i) want[i] += initial[i];
  ctx().write(dT, initial);
  test::run([&](Program& p) {
    ops::embedding_backward(p, I, dO, dT);
    ops::embedding_count_bad_ids(p, I, V, count);
    ops::embedding_count_bad_ids(p, I.view(3, {2}), V, count);  // two more: -1 and 7
  });
  EXPECT_LE(test::rel_l2(test::read_values(dT), want), 1e-6);
  EXPECT_EQ(ctx().read<uint32_t>(count)[0], 6u);
}

// Every id the same: one row gathers all positions, in order, run after run.
TEST(EmbeddingRepeats, OneIdEverywhere) {
  const int64_t V = 257, C = 33, N = 1000;
  const std::vector<int32_t> ids(N, 100);
  Arena arena(ctx(), "embedding");
  Tensor I = arena.alloc(DType::i32, {4, N / 4}), dO = arena.alloc(DType::f32, {4, N / 4, C});
  Tensor dT = arena.alloc(DType::f32, {V, C});
  const std::vector<float> dout = test::random_floats(N * C, 13);
  ctx().write(I, ids);
  ctx().write(dO, dout);
  ref::Vec got = test::run_twice({dT}, [&] { ctx().write(dT, std::vector<float>(V * C, 0.0f)); },
                                 [&](Program& p) { ops::embedding_backward(p, I, dO, dT); })[0];
  EXPECT_LE(test::rel_l2(got, ref::embedding_backward(ids, test::to_double(dout), V, C)), 1e-5);
}

// Over maxStorageBufferRange (128 MiB on lavapipe), out and dout are bound in pieces of positions; the
// backward adds the pieces one after another. Random ids make a misplaced piece show; the hot ones take
// some 1500 positions each, a long fp32 sum: hence the looser bound.
TEST(EmbeddingLarge, PiecesOfPositions) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t V = 257, C = 4096, N = int64_t(range / (C * 4)) + 700;
  Arena arena(ctx(), "embedding-large", MemoryKind::device, uint64_t(N * C * 4) + (1 << 20));
  Tensor T = arena.alloc(DType::f32, {V, C}), I = arena.alloc(DType::i32, {N});
  Tensor O = arena.alloc(DType::f32, {N, C}), dT = arena.alloc(DType::f32, {V, C});
  const std::vector<float> table = test::random_floats(V * C, 14);
  const std::vector<int32_t> ids = random_ids(N, V, 15);
  ctx().write(T, table);
  ctx().write(I, ids);
  test::poison(O);
  ctx().write(dT, std::vector<float>(V * C, 0.0f));
  test::run([&](Program& p) {
    ops::embedding(p, T, I, O);
    ops::embedding_backward(p, I, O, dT);
  });
  const ref::Vec out = ref::embedding(test::to_double(table), ids, V, C);
  EXPECT_EQ(test::rel_l2(test::to_double(ctx().read<float>(O)), out), 0.0);
  EXPECT_LE(test::rel_l2(test::read_values(dT), ref::embedding_backward(ids, out, V, C)), 1e-4);
}

// Each bad call throws vkm::Error naming the offending tensor, and adds nothing to the program.
TEST(EmbeddingErrors, BadShapesAndTypesThrow) {
  Arena arena(ctx(), "embedding");
  Tensor T = arena.alloc(DType::f32, {10, 4}), I = arena.alloc(DType::i32, {2, 3});
  Tensor O = arena.alloc(DType::f32, {2, 3, 4}), count = arena.alloc(DType::u32, {1});
  Program p(ctx(), "bad");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  expect_error("f32[2,3,5]", [&] { ops::embedding(p, T, I, f32({2, 3, 5})); });                 // C differs
  expect_error("f32[3,2,4]", [&] { ops::embedding(p, T, I, f32({3, 2, 4})); });                 // other positions
  expect_error("f32[2,3] ", [&] { ops::embedding(p, T, f32({2, 3}), O); });                     // ids not i32
  expect_error("f32[40]", [&] { ops::embedding(p, T.flat(), I, O); });                          // table not [V,C]
  expect_error("f16[10,4]", [&] { ops::embedding(p, arena.alloc(DType::f16, {10, 4}), I, O); });  // f16 -> f32
  expect_error("bf16[10,4]", [&] {  // a 16-bit table is copied, so out must be of its type
    ops::embedding(p, arena.alloc(DType::bf16, {10, 4}), I, arena.alloc(DType::f16, {2, 3, 4}));
  });
  expect_error("f32[6,4]", [&] { ops::embedding(p, O.reshape({6, 4}), I, O); });                // out overlaps
  expect_error("f16[10,4]", [&] { ops::embedding_backward(p, I, O, arena.alloc(DType::f16, {10, 4})); });
  expect_error("f32[2,3,5]", [&] { ops::embedding_backward(p, I, f32({2, 3, 5}), T); });
  expect_error("i32[1]", [&] { ops::embedding_count_bad_ids(p, I, 10, arena.alloc(DType::i32, {1})); });
  EXPECT_EQ(p.dispatch_count(), 0u);
}

}  // namespace
}  // namespace vkm
