#include "engine/ops/matmul.hpp"

#include <cstring>
#include <functional>
#include <tuple>

#include "engine/error.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

constexpr double kTol = 1e-4;

// Sets `out` to `init` (or poisons it when `init` is empty), runs `record`, and does it all again: both runs
// must give the same bits. Returns the result.
std::vector<float> run_twice(const Tensor& out, const std::vector<float>& init,
                             const std::function<void(Program&)>& record) {
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    if (init.empty())
      test::poison(out);
    else
      ctx().write(out, init);
    test::run(record);
    std::vector<float> got = ctx().read<float>(out);
    if (run == 0)
      first = std::move(got);
    else
      EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)), 0) << "two runs differ";
  }
  return first;
}

// got must be want (+ init when accumulating); a NaN or infinity anywhere makes rel_l2 infinite.
void expect_close(const std::vector<float>& got, ref::Vec want, const std::vector<float>& init) {
  for (size_t i = 0; i < init.size(); ++i) want[i] += init[i];
  EXPECT_LE(test::rel_l2(test::to_double(got), want), kTol);
}

// Random initial contents of an output when accumulating, none (poison) otherwise.
std::vector<float> initial(bool accumulate, int64_t n, uint32_t seed) {
  return accumulate ? test::random_floats(n, seed) : std::vector<float>{};
}

class MatmulTest : public testing::TestWithParam<std::tuple<int64_t, int64_t, int64_t>> {};

TEST_P(MatmulTest, LinearForms) {
  const auto [M, N, K] = GetParam();
  Arena arena(ctx(), "matmul");
  const auto x = test::random_floats(M * K, 1), w = test::random_floats(N * K, 2), dy = test::random_floats(M * N, 3);
  Tensor X = arena.alloc(DType::f32, {M, K}), W = arena.alloc(DType::f32, {N, K}), dY = arena.alloc(DType::f32, {M, N});
  Tensor Y = arena.alloc(DType::f32, {M, N}), dX = arena.alloc(DType::f32, {M, K}),
         dW = arena.alloc(DType::f32, {N, K});
  ctx().write(X, x);
  ctx().write(W, w);
  ctx().write(dY, dy);
  for (bool acc : {false, true}) {
    SCOPED_TRACE(acc ? "accumulate" : "overwrite");
    auto y0 = initial(acc, M * N, 4), dx0 = initial(acc, M * K, 5), dw0 = initial(acc, N * K, 6);
    expect_close(run_twice(Y, y0, [&](Program& p) { ops::linear(p, X, W, Y, acc); }), ref::linear(x, w, M, N, K), y0);
    expect_close(run_twice(dX, dx0, [&](Program& p) { ops::linear_backward_input(p, dY, W, dX, acc); }),
                 ref::linear_backward_input(dy, w, M, N, K), dx0);
    expect_close(run_twice(dW, dw0, [&](Program& p) { ops::linear_backward_weight(p, dY, X, dW, acc); }),
                 ref::linear_backward_weight(dy, x, M, N, K), dw0);
  }
}

TEST_P(MatmulTest, EveryVariantAndTile) {
  const auto [M, N, K] = GetParam();
  Arena arena(ctx(), "matmul");
  const auto a = test::random_floats(M * K, 7), b = test::random_floats(K * N, 8);
  Tensor C = arena.alloc(DType::f32, {M, N});
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor A = arena.alloc(DType::f32, ta ? Shape{K, M} : Shape{M, K});
      Tensor B = arena.alloc(DType::f32, tb ? Shape{N, K} : Shape{K, N});
      ctx().write(A, a);
      ctx().write(B, b);
      const ref::Vec want = ref::matmul(a, b, M, N, K, ta, tb);
      for (auto tile : {ops::MatmulTile::t64, ops::MatmulTile::t128})
        for (bool acc : {false, true}) {
          SCOPED_TRACE(testing::Message() << "trans_a " << ta << " trans_b " << tb << " tile "
                                          << (tile == ops::MatmulTile::t64 ? 64 : 128) << " accumulate " << acc);
          auto c0 = initial(acc, M * N, 9);
          expect_close(run_twice(C, c0, [&](Program& p) { ops::matmul(p, A, B, C, {ta, tb, acc, tile}); }), want, c0);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(7, 7, 7),
                                         std::make_tuple(33, 33, 33), std::make_tuple(64, 64, 64),
                                         std::make_tuple(257, 257, 257), std::make_tuple(33, 257, 7),
                                         std::make_tuple(257, 1, 64), std::make_tuple(7, 64, 257)),
                         [](const auto& info) {
                           return "M" + std::to_string(std::get<0>(info.param)) + "_N" +
                                  std::to_string(std::get<1>(info.param)) + "_K" +
                                  std::to_string(std::get<2>(info.param));
                         });

// Entry z of a batch of matrices of `size` elements each (v itself when it holds one shared matrix).
std::vector<float> entry(const std::vector<float>& v, int64_t z, int64_t size) {
  if (int64_t(v.size()) == size) return v;
  return std::vector<float>(v.begin() + z * size, v.begin() + (z + 1) * size);
}

TEST(MatmulBatch, BatchedAndShared) {
  const int64_t M = 33, N = 20, K = 17;
  const Shape batch{2, 3};
  const int64_t count = 6;
  Arena arena(ctx(), "matmul");
  struct Case {
    bool ta, tb, a_batched, b_batched, acc;
  };
  for (const Case& c : {Case{false, false, true, true, false}, Case{true, false, true, true, true},
                        Case{false, true, true, false, false}, Case{true, true, false, true, true}}) {
    SCOPED_TRACE(testing::Message() << "trans_a " << c.ta << " trans_b " << c.tb << " A batched " << c.a_batched
                                    << " B batched " << c.b_batched << " accumulate " << c.acc);
    auto with_batch = [&](bool batched, Shape m) {
      if (batched) m.insert(m.begin(), batch.begin(), batch.end());
      return m;
    };
    Tensor A = arena.alloc(DType::f32, with_batch(c.a_batched, c.ta ? Shape{K, M} : Shape{M, K}));
    Tensor B = arena.alloc(DType::f32, with_batch(c.b_batched, c.tb ? Shape{N, K} : Shape{K, N}));
    Tensor C = arena.alloc(DType::f32, with_batch(true, {M, N}));
    const auto a = test::random_floats(A.numel(), 10), b = test::random_floats(B.numel(), 11);
    ctx().write(A, a);
    ctx().write(B, b);
    auto c0 = initial(c.acc, C.numel(), 12);
    std::vector<float> got = run_twice(C, c0, [&](Program& p) { ops::matmul(p, A, B, C, {c.ta, c.tb, c.acc}); });
    ref::Vec want;
    for (int64_t z = 0; z < count; ++z) {
      ref::Vec part = ref::matmul(entry(a, z, M * K), entry(b, z, K * N), M, N, K, c.ta, c.tb);
      want.insert(want.end(), part.begin(), part.end());
    }
    expect_close(got, want, c0);
  }
}

TEST(MatmulLinear, FlattensLeadingDims) {
  const int64_t B = 2, T = 5, N = 9, K = 12;
  Arena arena(ctx(), "matmul");
  const auto x = test::random_floats(B * T * K, 13), w = test::random_floats(N * K, 14);
  Tensor X = arena.alloc(DType::f32, {B, T, K}), W = arena.alloc(DType::f32, {N, K}),
         Y = arena.alloc(DType::f32, {B, T, N});
  ctx().write(X, x);
  ctx().write(W, w);
  expect_close(run_twice(Y, {}, [&](Program& p) { ops::linear(p, X, W, Y); }), ref::linear(x, w, B * T, N, K), {});
}

// Past maxStorageBufferRange the product runs in pieces: rows of C for Y = X·Wᵀ and dX = dY·W, batch entries,
// and for dW = dYᵀ·X slices of k summed into dW one after another. Each product has one operand just over
// the range; big outputs keep the padded work (and the time on lavapipe) small.
TEST(MatmulLarge, BeyondOneBinding) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t wide = 1024, narrow = 2, M = 2 * (int64_t(range / 4) / wide / 2 + 150);
  Arena arena(ctx(), "matmul-large");
  const auto x = test::random_floats(M * narrow, 15), w = test::random_floats(wide * narrow, 16),
             big = test::random_floats(M * wide, 17);
  Tensor X = arena.alloc(DType::f32, {M, narrow}), Big = arena.alloc(DType::f32, {M, wide});
  Tensor W_nk = arena.alloc(DType::f32, {wide, narrow}), W_kn = arena.alloc(DType::f32, {narrow, wide});
  Tensor Out = arena.alloc(DType::f32, {M, wide}), dW = arena.alloc(DType::f32, {wide, narrow});
  ctx().write(X, x);
  ctx().write(Big, big);
  ctx().write(W_nk, w);
  ctx().write(W_kn, w);
  // One run each: the other tests check determinism.
  auto once = [](const Tensor& out, const std::function<void(Program&)>& record) {
    test::poison(out);
    test::run(record);
    return ctx().read<float>(out);
  };
  const ref::Vec y = ref::linear(x, w, M, wide, narrow);
  expect_close(once(Out, [&](Program& p) { ops::linear(p, X, W_nk, Out); }), y, {});
  Tensor x2 = X.reshape({2, M / 2, narrow}), out2 = Out.reshape({2, M / 2, wide});
  expect_close(once(Out, [&](Program& p) { ops::matmul(p, x2, W_nk, out2, {.trans_b = true}); }), y, {});
  expect_close(once(Out, [&](Program& p) { ops::linear_backward_input(p, X, W_kn, Out); }),
               ref::linear_backward_input(x, w, M, narrow, wide), {});
  expect_close(once(dW, [&](Program& p) { ops::linear_backward_weight(p, Big, X, dW, false); }),
               ref::linear_backward_weight(big, x, M, wide, narrow), {});
}

// Each bad call throws vkm::Error naming the offending tensor's shape, and adds nothing to the program.
TEST(MatmulErrors, BadShapesThrow) {
  Arena arena(ctx(), "matmul");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  Tensor X = f32({4, 8}), W = f32({5, 8}), Y = f32({4, 5});
  Program p(ctx(), "bad shapes");
  auto expect_error = [](const char* shape, const std::function<void()>& call) {
    try {
      call();
      ADD_FAILURE() << "accepted; want an error naming " << shape;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(shape), std::string::npos) << "want " << shape << " in: " << e.what();
    }
  };
  expect_error("f32[5,7]", [&] { ops::linear(p, X, f32({5, 7}), Y); });                      // K differs
  expect_error("f32[4,6]", [&] { ops::linear(p, X, W, f32({4, 6})); });                      // Y has the wrong N
  expect_error("f32[3,5]", [&] { ops::linear(p, X, W, f32({3, 5})); });                      // Y has the wrong rows
  expect_error("f32[4,7]", [&] { ops::linear_backward_input(p, Y, W, f32({4, 7})); });       // dX has the wrong K
  expect_error("f32[8,5]", [&] { ops::linear_backward_weight(p, Y, X, f32({8, 5})); });      // dW transposed
  expect_error("f16[5,8]", [&] { ops::linear(p, X, arena.alloc(DType::f16, {5, 8}), Y); });  // not f32
  expect_error("f32[5,8]", [&] { ops::matmul(p, X, W, Y); });  // [4,8]·[5,8] without trans_b
  expect_error("f32[3,4,5]", [&] { ops::matmul(p, f32({2, 4, 8}), W, f32({3, 4, 5}), {.trans_b = true}); });
  expect_error("f32[8]", [&] { ops::matmul(p, f32({8}), W, Y, {.trans_b = true}); });             // A is not a matrix
  expect_error("f32[4,5]", [&] { ops::matmul(p, X, W, X.view(0, {4, 5}), {.trans_b = true}); });  // C overlaps A
  EXPECT_EQ(p.dispatch_count(), 0u);
}

}  // namespace
}  // namespace vkm
