#include "engine/ops/matmul.hpp"

#include <cstdlib>
#include <functional>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/matmul.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;
using test::expect_error;

// fp32 sums over up to 257 terms; an f16 output is off by its rounding, at most half an f16 ulp. Tensor
// cores truncate while they align the terms of each block sum: an fp32 output of theirs gets more room. The
// emulation sums exact products in k order, as the tiled kernel does.
constexpr double kTol = 1e-4;
constexpr double kTolF16 = 5e-3;
constexpr double kTolBf16 = 1.5e-2;  // bf16 keeps 8 significant bits: half an ulp is 2^-9 relative
constexpr double kTolCoop = 1e-3;

double tolerance(const Tensor& out, ops::MatmulPath path = ops::MatmulPath::tiled) {
  if (out.dtype == DType::f16) return kTolF16;
  if (out.dtype == DType::bf16) return kTolBf16;
  return path == ops::MatmulPath::cooperative ? kTolCoop : kTol;
}

// Sets `out` to `init` (or leaves it poisoned when `init` is empty) before each of two runs of `record`: both
// runs must give the same bits. Returns the result.
ref::Vec run_twice(const Tensor& out, const ref::Vec& init, const std::function<void(Program&)>& record) {
  return test::run_twice({out}, [&] { if (!init.empty()) test::write_values(out, init); }, record)[0];
}

// got must be want (+ init when accumulating) within the output dtype's tolerance; a NaN or infinity
// anywhere makes rel_l2 infinite.
void expect_close(const ref::Vec& got, ref::Vec want, const ref::Vec& init, double tol = kTol) {
  for (size_t i = 0; i < init.size(); ++i) want[i] += init[i];
  EXPECT_LE(test::rel_l2(got, want), tol);
}

// Seeded values a tensor of dtype t holds exactly.
ref::Vec values(DType t, size_t n, uint32_t seed) { return test::stored(test::random_floats(n, seed), t); }

// Random initial contents of an output of dtype t when accumulating, none (poison) otherwise.
ref::Vec initial(bool accumulate, DType t, int64_t n, uint32_t seed) {
  return accumulate ? values(t, n, seed) : ref::Vec{};
}

// What the three tensors of a product are stored as: the inputs' dtype and the output's.
struct Storage {
  DType in, out;
};
// Every storage the device runs: the 16-bit ones need its support.
std::vector<Storage> storages() {
  std::vector<Storage> s{{DType::f32, DType::f32}};
  for (DType half : {DType::f16, DType::bf16})
    if (ops::has_storage(ctx(), half)) s.insert(s.end(), {{half, half}, {half, DType::f32}});
  return s;
}
// The storages of the cooperative kernels: f16 inputs.
const std::vector<Storage> kCoopStorages{{DType::f16, DType::f16}, {DType::f16, DType::f32}};
std::string describe(const Storage& s) {
  return std::string(dtype_name(s.in)) + " inputs, " + std::string(dtype_name(s.out)) + " output";
}

using MNK = std::tuple<int64_t, int64_t, int64_t>;
std::string shape_name(const testing::TestParamInfo<MNK>& info) {
  const auto [M, N, K] = info.param;
  return "M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" + std::to_string(K);
}

class MatmulTest : public testing::TestWithParam<MNK> {};

TEST_P(MatmulTest, LinearForms) {
  const auto [M, N, K] = GetParam();
  Arena arena(ctx(), "matmul");
  for (const Storage& st : storages()) {
    const auto x = values(st.in, M * K, 1), w = values(st.in, N * K, 2), dy = values(st.in, M * N, 3);
    Tensor X = arena.alloc(st.in, {M, K}), W = arena.alloc(st.in, {N, K}), dY = arena.alloc(st.in, {M, N});
    Tensor Y = arena.alloc(st.out, {M, N}), dX = arena.alloc(st.out, {M, K}), dW = arena.alloc(st.out, {N, K});
    test::write_values(X, x);
    test::write_values(W, w);
    test::write_values(dY, dy);
    for (bool acc : {false, true}) {
      SCOPED_TRACE(describe(st) + (acc ? ", accumulate" : ", overwrite"));
      auto y0 = initial(acc, st.out, M * N, 4), dx0 = initial(acc, st.out, M * K, 5),
           dw0 = initial(acc, st.out, N * K, 6);
      expect_close(run_twice(Y, y0, [&](Program& p) { ops::linear(p, X, W, Y, acc); }), ref::linear(x, w, M, N, K),
                   y0, tolerance(Y));
      expect_close(run_twice(dX, dx0, [&](Program& p) { ops::linear_backward_input(p, dY, W, dX, acc); }),
                   ref::linear_backward_input(dy, w, M, N, K), dx0, tolerance(dX));
      expect_close(run_twice(dW, dw0, [&](Program& p) { ops::linear_backward_weight(p, dY, X, dW, acc); }),
                   ref::linear_backward_weight(dy, x, M, N, K), dw0, tolerance(dW));
    }
  }
}

// Every transpose form on one kernel, with both block sizes, overwriting and accumulating.
void check_every_form(int64_t M, int64_t N, int64_t K, const std::vector<Storage>& storages, ops::MatmulPath path) {
  Arena arena(ctx(), "matmul");
  for (const Storage& st : storages) {
    const auto a = values(st.in, M * K, 7), b = values(st.in, K * N, 8);
    Tensor C = arena.alloc(st.out, {M, N});
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Tensor A = arena.alloc(st.in, ta ? Shape{K, M} : Shape{M, K});
        Tensor B = arena.alloc(st.in, tb ? Shape{N, K} : Shape{K, N});
        test::write_values(A, a);
        test::write_values(B, b);
        const ref::Vec want = ref::matmul(a, b, M, N, K, ta, tb);
        for (auto tile : {ops::MatmulTile::t64, ops::MatmulTile::t128})
          for (bool acc : {false, true}) {
            SCOPED_TRACE(testing::Message() << describe(st) << ", trans_a " << ta << " trans_b " << tb << " tile "
                                            << (tile == ops::MatmulTile::t64 ? 64 : 128) << " accumulate " << acc);
            auto c0 = initial(acc, st.out, M * N, 9);
            expect_close(run_twice(C, c0, [&](Program& p) { ops::matmul(p, A, B, C, {ta, tb, acc, tile, path}); }),
                         want, c0, tolerance(C, path));
          }
      }
  }
}

TEST_P(MatmulTest, EveryVariantAndTile) {
  const auto [M, N, K] = GetParam();
  check_every_form(M, N, K, storages(), ops::MatmulPath::tiled);
}

// An f16 C is the fp32 result rounded once, to nearest even. The same product into an f32 C runs the same
// sums (the variants differ only in the store), so rounding that on the host must give the same bits.
void check_f16_rounds_once(int64_t M, int64_t N, int64_t K, ops::MatmulPath path) {
  Arena arena(ctx(), "matmul");
  const auto a = values(DType::f16, M * K, 18), b = values(DType::f16, K * N, 19);
  Tensor Ch = arena.alloc(DType::f16, {M, N}), Cf = arena.alloc(DType::f32, {M, N});
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor A = arena.alloc(DType::f16, ta ? Shape{K, M} : Shape{M, K});
      Tensor B = arena.alloc(DType::f16, tb ? Shape{N, K} : Shape{K, N});
      test::write_values(A, a);
      test::write_values(B, b);
      for (bool acc : {false, true}) {
        SCOPED_TRACE(testing::Message() << "trans_a " << ta << " trans_b " << tb << " accumulate " << acc);
        auto c0 = initial(acc, DType::f16, M * N, 20);
        for (const Tensor& C : {Ch, Cf}) acc ? test::write_values(C, c0) : test::poison(C);
        test::run([&](Program& p) {
          ops::matmul(p, A, B, Ch, {.trans_a = ta, .trans_b = tb, .accumulate = acc, .path = path});
          ops::matmul(p, A, B, Cf, {.trans_a = ta, .trans_b = tb, .accumulate = acc, .path = path});
        });
        const auto half = ctx().read<uint16_t>(Ch);
        const auto full = ctx().read<float>(Cf);
        size_t wrong = 0;
        for (size_t i = 0; i < half.size(); ++i)
          if (half[i] != f32_to_f16(full[i]) && wrong++ == 0)
            ADD_FAILURE() << "element " << i << ": f16 C holds " << f16_to_f32(half[i]) << ", the f32 C "
                          << full[i] << " rounds to " << f16_to_f32(f32_to_f16(full[i]));
        EXPECT_EQ(wrong, 0u);
      }
    }
}

TEST_P(MatmulTest, F16OutputRoundsOnce) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "the device lacks 16-bit support";
  const auto [M, N, K] = GetParam();
  check_f16_rounds_once(M, N, K, ops::MatmulPath::tiled);
}

// In each shape M, N and K are all odd, all 4n + 2 or all 4n, so that both operands of every product load 1,
// 2 or 4 elements at a time: the widths of A and B are independent code, and each mixed pair would be more
// kernels for lavapipe to compile (most of this file's time). Ragged edges, several blocks and several k
// slices with both block sizes; distinct M, N and K catch swapped dims.
INSTANTIATE_TEST_SUITE_P(Shapes, MatmulTest,
                         testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(7, 7, 7),
                                         std::make_tuple(33, 33, 33), std::make_tuple(64, 64, 64),
                                         std::make_tuple(129, 131, 133), std::make_tuple(33, 257, 7),
                                         std::make_tuple(257, 1, 65), std::make_tuple(7, 65, 257),
                                         std::make_tuple(10, 34, 66)),
                         shape_name);

// Entry z of a batch of matrices of `size` elements each (v itself when it holds one shared matrix).
ref::Vec entry(const ref::Vec& v, int64_t z, int64_t size) {
  if (int64_t(v.size()) == size) return v;
  return ref::Vec(v.begin() + z * size, v.begin() + (z + 1) * size);
}

// Batches of A and B, or one matrix shared by every entry, on one kernel.
void check_batched(const std::vector<Storage>& storages, ops::MatmulPath path) {
  const int64_t M = 33, N = 21, K = 17;
  const Shape batch{2, 3};
  const int64_t count = 6;
  Arena arena(ctx(), "matmul");
  struct Case {
    bool ta, tb, a_batched, b_batched, acc;
  };
  for (const Storage& st : storages)
    for (const Case& c : {Case{false, false, true, true, false}, Case{true, false, true, true, true},
                          Case{false, true, true, false, false}, Case{true, true, false, true, true}}) {
      SCOPED_TRACE(testing::Message() << describe(st) << ", trans_a " << c.ta << " trans_b " << c.tb << " A batched "
                                      << c.a_batched << " B batched " << c.b_batched << " accumulate " << c.acc);
      auto with_batch = [&](bool batched, Shape m) {
        if (batched) m.insert(m.begin(), batch.begin(), batch.end());
        return m;
      };
      Tensor A = arena.alloc(st.in, with_batch(c.a_batched, c.ta ? Shape{K, M} : Shape{M, K}));
      Tensor B = arena.alloc(st.in, with_batch(c.b_batched, c.tb ? Shape{N, K} : Shape{K, N}));
      Tensor C = arena.alloc(st.out, with_batch(true, {M, N}));
      const auto a = values(st.in, A.numel(), 10), b = values(st.in, B.numel(), 11);
      test::write_values(A, a);
      test::write_values(B, b);
      auto c0 = initial(c.acc, st.out, C.numel(), 12);
      ref::Vec got = run_twice(C, c0, [&](Program& p) { ops::matmul(p, A, B, C, {c.ta, c.tb, c.acc, {}, path}); });
      ref::Vec want;
      for (int64_t z = 0; z < count; ++z) {
        ref::Vec part = ref::matmul(entry(a, z, M * K), entry(b, z, K * N), M, N, K, c.ta, c.tb);
        want.insert(want.end(), part.begin(), part.end());
      }
      expect_close(got, want, c0, tolerance(C, path));
    }
}

TEST(MatmulBatch, BatchedAndShared) { check_batched(storages(), ops::MatmulPath::tiled); }

TEST(MatmulLinear, FlattensLeadingDims) {
  const int64_t B = 2, T = 5, N = 9, K = 12;
  Arena arena(ctx(), "matmul");
  const auto x = test::random_floats(B * T * K, 13), w = test::random_floats(N * K, 14);
  Tensor X = arena.alloc(DType::f32, {B, T, K}), W = arena.alloc(DType::f32, {N, K}),
         Y = arena.alloc(DType::f32, {B, T, N});
  ctx().write(X, x);
  ctx().write(W, w);
  expect_close(run_twice(Y, {}, [&](Program& p) { ops::linear(p, X, W, Y); }), ref::linear(test::to_double(x), test::to_double(w), B * T, N, K), {});
}

// Operands that start anywhere in their buffers, with loads of 4, 2 and 1 elements: each view starts `shift`
// elements into a larger tensor, and loads are as wide as the stored row lengths and that start allow.
void check_views(const std::vector<Storage>& storages, ops::MatmulPath path) {
  struct Case {
    int64_t rows, K, shift;  // M = rows, N = rows + 4
  };
  // Rows of 4n, 4n + 2 and odd lengths, each with a start that allows as much, then rows of 4n with a start
  // that allows only single elements.
  const Case cases[] = {{8, 68, 8}, {10, 66, 2}, {9, 67, 1}, {8, 68, 1}};
  Arena arena(ctx(), "matmul");
  for (const Storage& st : storages)
    for (const Case& c : cases) {
      const int64_t M = c.rows, N = c.rows + 4, K = c.K;
      const auto a = values(st.in, M * K, 21), b = values(st.in, K * N, 22);
      const bool acc = c.shift == 2;
      auto c0 = initial(acc, st.out, M * N, 23);
      auto within = [&](DType t, int64_t n) { return arena.alloc(t, {c.shift + n + 3}); };
      Tensor a_all = within(st.in, M * K), b_all = within(st.in, K * N), c_all = within(st.out, M * N);
      for (bool ta : {false, true})
        for (bool tb : {false, true}) {
          SCOPED_TRACE(testing::Message() << describe(st) << ", M " << M << " N " << N << " K " << K << " shift "
                                          << c.shift << " trans_a " << ta << " trans_b " << tb);
          Tensor A = a_all.view(c.shift, ta ? Shape{K, M} : Shape{M, K});
          Tensor B = b_all.view(c.shift, tb ? Shape{N, K} : Shape{K, N});
          Tensor C = c_all.view(c.shift, {M, N});
          test::write_values(A, a);
          test::write_values(B, b);
          expect_close(run_twice(C, c0, [&](Program& p) { ops::matmul(p, A, B, C, {ta, tb, acc, {}, path}); }),
                       ref::matmul(a, b, M, N, K, ta, tb), c0, tolerance(C, path));
        }
    }
}

TEST(MatmulViews, AnyOffsetAndLoadWidth) { check_views(storages(), ops::MatmulPath::tiled); }

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
    return test::read_values(out);
  };
  const ref::Vec y = ref::linear(test::to_double(x), test::to_double(w), M, wide, narrow);
  expect_close(once(Out, [&](Program& p) { ops::linear(p, X, W_nk, Out); }), y, {});
  Tensor x2 = X.reshape({2, M / 2, narrow}), out2 = Out.reshape({2, M / 2, wide});
  expect_close(once(Out, [&](Program& p) { ops::matmul(p, x2, W_nk, out2, {.trans_b = true}); }), y, {});
  expect_close(once(Out, [&](Program& p) { ops::linear_backward_input(p, X, W_kn, Out); }),
               ref::linear_backward_input(test::to_double(x), test::to_double(w), M, narrow, wide), {});
  expect_close(once(dW, [&](Program& p) { ops::linear_backward_weight(p, Big, X, dW, false); }),
               ref::linear_backward_weight(test::to_double(big), test::to_double(x), M, wide, narrow), {});
}

// The mixed-precision weight gradient past the range: f16 dY and X, summed into an fp32 dW over slices of k.
TEST(MatmulLarge, F16BeyondOneBinding) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "the device lacks 16-bit support";
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t wide = 1024, narrow = 2, M = int64_t(range / 2) / wide + 300;
  Arena arena(ctx(), "matmul-large");
  const auto x = values(DType::f16, M * narrow, 24), dy = values(DType::f16, M * wide, 25);
  Tensor X = arena.alloc(DType::f16, {M, narrow}), dY = arena.alloc(DType::f16, {M, wide});
  Tensor dW = arena.alloc(DType::f32, {wide, narrow});
  test::write_values(X, x);
  test::write_values(dY, dy);
  test::poison(dW);
  test::run([&](Program& p) { ops::linear_backward_weight(p, dY, X, dW, false); });
  expect_close(test::read_values(dW), ref::linear_backward_weight(dy, x, M, wide, narrow), {});
}

// Each bad call throws vkm::Error naming the offending tensor's shape, and adds nothing to the program.
TEST(MatmulErrors, BadShapesThrow) {
  Arena arena(ctx(), "matmul");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  Tensor X = f32({4, 8}), W = f32({5, 8}), Y = f32({4, 5});
  Program p(ctx(), "bad shapes");
  expect_error("f32[5,7]", [&] { ops::linear(p, X, f32({5, 7}), Y); });                      // K differs
  expect_error("f32[4,6]", [&] { ops::linear(p, X, W, f32({4, 6})); });                      // Y has the wrong N
  expect_error("f32[3,5]", [&] { ops::linear(p, X, W, f32({3, 5})); });                      // Y has the wrong rows
  expect_error("f32[4,7]", [&] { ops::linear_backward_input(p, Y, W, f32({4, 7})); });       // dX has the wrong K
  expect_error("f32[8,5]", [&] { ops::linear_backward_weight(p, Y, X, f32({8, 5})); });      // dW transposed
  expect_error("f16[5,8]", [&] { ops::linear(p, X, arena.alloc(DType::f16, {5, 8}), Y); });  // f32 and f16 inputs
  expect_error("f16[4,5]", [&] { ops::linear(p, X, W, arena.alloc(DType::f16, {4, 5})); });  // f16 out of f32
  expect_error("bf16[4,8]", [&] {  // bf16 and f16 mixed
    ops::matmul(p, arena.alloc(DType::bf16, {4, 8}), arena.alloc(DType::f16, {8, 5}), Y);
  });
  expect_error("f16[4,5]", [&] {  // a bf16 product into f16
    ops::matmul(p, arena.alloc(DType::bf16, {4, 8}), arena.alloc(DType::bf16, {8, 5}), arena.alloc(DType::f16, {4, 5}));
  });
  expect_error("f32[5,8]", [&] { ops::matmul(p, X, W, Y); });  // [4,8]·[5,8] without trans_b
  expect_error("f32[3,4,5]", [&] { ops::matmul(p, f32({2, 4, 8}), W, f32({3, 4, 5}), {.trans_b = true}); });
  expect_error("f32[8]", [&] { ops::matmul(p, f32({8}), W, Y, {.trans_b = true}); });             // A is not a matrix
  expect_error("f32[4,5]", [&] { ops::matmul(p, X, W, X.view(0, {4, 5}), {.trans_b = true}); });  // C overlaps A
  EXPECT_EQ(p.dispatch_count(), 0u);
}

// The path choice, on devices made by hand (test::tensor_core_gpu, less one thing at a time).
TEST(MatmulPathChoice, TensorCoresForF16Inputs) {
  for (DType out : {DType::f16, DType::f32}) {
    const ops::MatmulChoice c = ops::choose_matmul_path(test::tensor_core_gpu(), DType::f16, out, true);
    EXPECT_EQ(c.path, ops::MatmulPath::cooperative);
    EXPECT_EQ(c.describe(), "cooperative matrix 16x16x16 (VK_NV_cooperative_matrix)");  // the largest shape
  }
  DeviceInfo d = test::tensor_core_gpu();
  d.nv_coop_shapes.erase(d.nv_coop_shapes.begin() + 2);
  EXPECT_EQ(ops::choose_matmul_path(d, DType::f16, DType::f16, true).describe(),
            "cooperative matrix 16x8x16 (VK_NV_cooperative_matrix)");
}

TEST(MatmulPathChoice, TiledOtherwise) {
  struct Case {
    std::string what;                      // what the device lacks
    std::function<void(DeviceInfo&)> take;
    std::string why;                       // what the choice must say
  };
  auto only = [](CoopMatrixShape s) { return [s](DeviceInfo& d) { d.nv_coop_shapes = {s}; }; };
  const Case cases[] = {
      {"the extension", [](DeviceInfo& d) { d.nv_cooperative_matrix = false; }, "no VK_NV_cooperative_matrix"},
      {"the NV extension, KHR present",
       [](DeviceInfo& d) {
         d.nv_cooperative_matrix = false;
         d.khr_cooperative_matrix = true;
         d.khr_coop_shapes = d.nv_coop_shapes;
       },
       "VK_KHR_cooperative_matrix only: not used, Debian's glslang lacks GL_KHR_cooperative_matrix"},
      {"any shape", [](DeviceInfo& d) { d.nv_coop_shapes.clear(); }, "no VK_NV_cooperative_matrix shape"},
      {"an fp32 accumulator", only({16, 16, 16, "f16", "f16", "f16", "f16", "subgroup"}), "no VK_NV_cooperative_matrix shape"},
      {"subgroup scope", only({16, 16, 16, "f16", "f16", "f32", "f32", "workgroup"}), "no VK_NV_cooperative_matrix shape"},
      {"a shape that tiles", only({16, 16, 64, "f16", "f16", "f32", "f32", "subgroup"}), "no VK_NV_cooperative_matrix shape"},
      {"f16 arithmetic", [](DeviceInfo& d) { d.shader_float16 = false; }, "no 16-bit storage and arithmetic"},
      {"the memory model", [](DeviceInfo& d) { d.vulkan_memory_model = false; }, "no vulkanMemoryModel"},
      {"subgroups in compute", [](DeviceInfo& d) { d.subgroup_in_compute = false; }, "no subgroup operations"},
      {"a fixed subgroup size", [](DeviceInfo& d) { d.min_subgroup_size = 8; }, "subgroup size varies (8..32)"},
      {"invocations", [](DeviceInfo& d) { d.max_workgroup_invocations = 128; }, "invocations are over"},
      {"shared memory", [](DeviceInfo& d) { d.max_shared_memory = 16 << 10; }, "bytes of shared memory"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("without " + c.what);
    DeviceInfo d = test::tensor_core_gpu();
    c.take(d);
    const ops::MatmulChoice got = ops::choose_matmul_path(d, DType::f16, DType::f16, true);
    EXPECT_EQ(got.path, ops::MatmulPath::tiled);
    EXPECT_NE(got.why.find(c.why), std::string::npos) << got.why;
    EXPECT_EQ(got.describe(), "tiled shared memory (" + got.why + ")");
  }
  const ops::MatmulChoice f32 = ops::choose_matmul_path(test::tensor_core_gpu(), DType::f32, DType::f32, true);
  EXPECT_EQ(f32.path, ops::MatmulPath::tiled);
  EXPECT_EQ(f32.why, "f32 inputs into f32: tensor cores take f16 inputs into f16 or f32");
  const ops::MatmulChoice off = ops::choose_matmul_path(test::tensor_core_gpu(), DType::f16, DType::f16, false);
  EXPECT_EQ(off.path, ops::MatmulPath::tiled);
  EXPECT_EQ(off.why, "cooperative matrix turned off: --no-coopmat or VKMIND_NO_COOPMAT");
}

// The emulation needs 16-bit support and room for its blocks in groups of 32 invocations, nothing of the
// tensor cores' own: no extension, memory model or subgroup operations, and any subgroup size.
TEST(MatmulPathChoice, EmulatedNeedsOnly16BitAndRoom) {
  auto without_tensor_cores = [] {
    DeviceInfo d = test::tensor_core_gpu();
    d.nv_cooperative_matrix = d.vulkan_memory_model = d.subgroup_in_compute = false;
    d.nv_coop_shapes.clear();
    d.subgroup_ops.clear();
    d.subgroup_size = d.min_subgroup_size = 8;
    return d;
  };
  for (DType out : {DType::f16, DType::f32}) {
    const ops::MatmulChoice c = ops::emulated_matmul_path(without_tensor_cores(), DType::f16, out);
    EXPECT_EQ(c.path, ops::MatmulPath::emulated);
    EXPECT_EQ(c.describe(), "cooperative matrix 16x16x16 (emulated in plain GLSL, shaders/coopmat.glsl)");
  }
  struct Case {
    std::string what;
    std::function<void(DeviceInfo&)> take;
    std::string why;
  };
  const Case cases[] = {
      {"f16 arithmetic", [](DeviceInfo& d) { d.shader_float16 = false; }, "no 16-bit storage and arithmetic"},
      // 8 groups of 32, though 8 subgroups of this device's 8 invocations would fit
      {"invocations", [](DeviceInfo& d) { d.max_workgroup_invocations = 128; },
       "workgroups of 256 invocations are over"},
      {"shared memory", [](DeviceInfo& d) { d.max_shared_memory = 16 << 10; }, "bytes of shared memory"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("without " + c.what);
    DeviceInfo d = without_tensor_cores();
    c.take(d);
    const ops::MatmulChoice got = ops::emulated_matmul_path(d, DType::f16, DType::f16);
    EXPECT_EQ(got.path, ops::MatmulPath::tiled);
    EXPECT_NE(got.why.find(c.why), std::string::npos) << got.why;
  }
  for (DType in : {DType::f32, DType::bf16}) {
    const ops::MatmulChoice got = ops::emulated_matmul_path(test::tensor_core_gpu(), in, DType::f32);
    EXPECT_EQ(got.path, ops::MatmulPath::tiled);
    EXPECT_NE(got.why.find("tensor cores take f16 inputs"), std::string::npos) << got.why;
  }
}

// VKMIND_NO_COOPMAT (which `vkmind --no-coopmat` sets) is what ContextOptions starts from.
TEST(MatmulPathChoice, EnvironmentTurnsItOff) {
  const char* was = std::getenv("VKMIND_NO_COOPMAT");
  const std::string saved = was ? was : "";
  for (const char* value : {"1", "yes"}) {
    setenv("VKMIND_NO_COOPMAT", value, 1);
    EXPECT_FALSE(ContextOptions{}.cooperative_matrix) << value;
  }
  for (const char* value : {"0", ""}) {
    setenv("VKMIND_NO_COOPMAT", value, 1);
    EXPECT_TRUE(ContextOptions{}.cooperative_matrix) << value;
  }
  unsetenv("VKMIND_NO_COOPMAT");
  EXPECT_TRUE(ContextOptions{}.cooperative_matrix);
  if (was) setenv("VKMIND_NO_COOPMAT", saved.c_str(), 1);
}

// Whether this device runs the cooperative kernels on `path` (cooperative or emulated): "" if so, else why not
// (the tests below then skip).
std::string without_coop(ops::MatmulPath path = ops::MatmulPath::cooperative) {
  const DeviceInfo& d = ctx().info();
  const bool allowed = ctx().allows_cooperative_matrix();
  const ops::MatmulChoice c = path == ops::MatmulPath::emulated
                                  ? ops::emulated_matmul_path(d, DType::f16, DType::f16)
                                  : ops::choose_matmul_path(d, DType::f16, DType::f16, allowed);
  if (c.path == path) return "";
  return "matmul f16 on '" + d.name + "': " + c.describe();
}

// Asking for the cooperative or emulated path where it does not apply names the device and the reason.
TEST(MatmulPathChoice, ForcedWhereUnavailableThrows) {
  Arena arena(ctx(), "matmul");
  Program p(ctx(), "forced");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  const ops::MatmulSpec coop{.path = ops::MatmulPath::cooperative}, emu{.path = ops::MatmulPath::emulated};
  expect_error("tensor cores take f16", [&] { ops::matmul(p, f32({4, 8}), f32({8, 5}), f32({4, 5}), coop); });
  expect_error("the emulated cooperative-matrix path was asked for, but device '" + ctx().info().name +
                   "' cannot take it: f32 inputs into f32: tensor cores take f16",
               [&] { ops::matmul(p, f32({4, 8}), f32({8, 5}), f32({4, 5}), emu); });
  if (ops::has_16bit(ctx()) && !without_coop().empty()) {
    auto f16 = [&](Shape s) { return arena.alloc(DType::f16, std::move(s)); };
    expect_error("device '" + ctx().info().name + "' cannot take it",
                 [&] { ops::matmul(p, f16({4, 8}), f16({8, 5}), f16({4, 5}), coop); });
  }
  EXPECT_EQ(p.dispatch_count(), 0u);
}

// The cooperative kernels against the double reference: every form, f16 and f32 out, both block sizes,
// accumulate, batches, views at any offset, ragged sizes. They run on the tensor cores wherever
// choose_matmul_path takes them, and emulated wherever the device has 16-bit support.
void skip_without(ops::MatmulPath path) {
  if (std::string why = without_coop(path); !why.empty()) GTEST_SKIP() << why;
}
std::string path_name(ops::MatmulPath path) {
  return path == ops::MatmulPath::emulated ? "Emulated" : "Cooperative";
}

class MatmulCoopTest : public testing::TestWithParam<std::tuple<ops::MatmulPath, MNK>> {
 protected:
  void SetUp() override { skip_without(path()); }
  ops::MatmulPath path() const { return std::get<0>(GetParam()); }
  MNK shape() const { return std::get<1>(GetParam()); }
};

TEST_P(MatmulCoopTest, EveryForm) {
  const auto [M, N, K] = shape();
  check_every_form(M, N, K, kCoopStorages, path());
}

TEST_P(MatmulCoopTest, F16OutputRoundsOnce) {
  const auto [M, N, K] = shape();
  check_f16_rounds_once(M, N, K, path());
}

// Ragged shapes, several blocks and k slices, whose loads are all 1 element wide: lavapipe takes about a second
// to compile each emulated kernel (form, output, block size and load widths), so the widths 2 and 4 are left to
// AnyOffsetAndLoadWidth.
INSTANTIATE_TEST_SUITE_P(Shapes, MatmulCoopTest,
                         testing::Combine(testing::Values(ops::MatmulPath::cooperative, ops::MatmulPath::emulated),
                                          testing::Values(std::make_tuple(77, 45, 53), std::make_tuple(1, 1, 1),
                                                          std::make_tuple(33, 257, 7),
                                                          std::make_tuple(129, 131, 161))),
                         [](const testing::TestParamInfo<std::tuple<ops::MatmulPath, MNK>>& info) {
                           return path_name(std::get<0>(info.param)) + "_" +
                                  shape_name({std::get<1>(info.param), info.index});
                         });

class MatmulCoop : public testing::TestWithParam<ops::MatmulPath> {
 protected:
  void SetUp() override { skip_without(GetParam()); }
};

TEST_P(MatmulCoop, BatchedAndShared) { check_batched(kCoopStorages, GetParam()); }

// f16 output only: the load widths are staging, the same code for either output (EveryForm runs both).
TEST_P(MatmulCoop, AnyOffsetAndLoadWidth) { check_views({{DType::f16, DType::f16}}, GetParam()); }

INSTANTIATE_TEST_SUITE_P(Paths, MatmulCoop, testing::Values(ops::MatmulPath::cooperative, ops::MatmulPath::emulated),
                         [](const testing::TestParamInfo<ops::MatmulPath>& info) { return path_name(info.param); });

// Without a path asked for, the linear layer's f16 products take the tensor cores where choose_matmul_path
// says so, else the tiled kernel, never the emulation (seen in the labels of a profiled program).
TEST(MatmulPathChoice, AutomaticTakesTensorCoresElseTiled) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "the device lacks 16-bit support";
  if (ctx().timestamp_bits() == 0) GTEST_SKIP() << "the queue has no timestamps, so no profiled labels";
  const int64_t M = 40, N = 24, K = 72;
  Arena arena(ctx(), "matmul");
  Tensor X = arena.alloc(DType::f16, {M, K}), W = arena.alloc(DType::f16, {N, K}), Y = arena.alloc(DType::f16, {M, N});
  const auto x = values(DType::f16, M * K, 26), w = values(DType::f16, N * K, 27);
  test::write_values(X, x);
  test::write_values(W, w);
  test::poison(Y);
  Program p(ctx(), "automatic", /*profile=*/true);
  ops::linear(p, X, W, Y);
  ctx().wait(ctx().submit(p));
  expect_close(test::read_values(Y), ref::linear(x, w, M, N, K), {}, kTolF16);
  const std::vector<DispatchTiming> timings = p.timings();
  ASSERT_EQ(timings.size(), 1u);
  const std::string want = without_coop().empty() ? "matmul.nt_f16_coop " : "matmul.nt_f16 ";
  EXPECT_EQ(timings[0].label.rfind(want, 0), 0u) << timings[0].label;
}

}  // namespace
}  // namespace vkm
