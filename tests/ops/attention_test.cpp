#include "engine/ops/attention.hpp"

#include <functional>
#include <string>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/attention.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;
using test::expect_error;

struct Case {
  std::string name;
  ref::AttentionShape s;
  DType dtype = DType::f32;
  bool backward = true;
  std::vector<int32_t> lengths = {};  // empty: no padding
  ops::AttentionTile tile = ops::AttentionTile::automatic;
  ops::MatmulPath path = ops::MatmulPath::automatic;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// 16-bit outputs are rounded once on store; bf16 keeps 8 significant bits to f16's 11 (up to 2^-9 relative per
// element), and the backward also reads the forward's rounded out.
double forward_tol(DType t) { return t == DType::bf16 ? 1.5e-2 : t == DType::f16 ? 5e-3 : 1e-5; }
double backward_tol(DType t) { return t == DType::bf16 ? 1.5e-2 : t == DType::f16 ? 5e-3 : 1e-4; }

// Rows at or past their sequence's length must be exactly zero; rows_last says whether the layout is
// [B,T,H,D] (else [B,H,T]).
void expect_padding_zero(const char* what, const ref::Vec& got, const ref::AttentionShape& s, int64_t H,
                         const std::vector<int32_t>& lengths, bool rows_last) {
  const int64_t width = rows_last ? H * s.D : 1;
  for (int64_t b = 0; b < int64_t(lengths.size()); ++b)
    for (int64_t h = 0; h < (rows_last ? 1 : H); ++h)
      for (int64_t t = lengths[b]; t < s.T; ++t)
        for (int64_t e = 0; e < width; ++e) {
          const double x = got[rows_last ? (b * s.T + t) * width + e : (b * H + h) * s.T + t];
          if (x != 0.0) {
            ADD_FAILURE() << what << " of sequence " << b << " at padded position " << t << " is " << x;
            return;
          }
        }
}

class AttentionTest : public testing::TestWithParam<Case> {};

// Why this device cannot run the cooperative kernels on tensor cores at head dim D (the tests then skip); ""
// if it can.
std::string without_coop(int64_t D) {
  const ops::MatmulChoice c =
      ops::choose_attention_path(ctx().info(), DType::f16, D, ctx().allows_cooperative_matrix());
  if (c.path == ops::MatmulPath::cooperative) return "";
  return "attention f16 at head dim " + std::to_string(D) + " on '" + ctx().info().name + "': " + c.describe();
}

TEST_P(AttentionTest, MatchesReference) {
  const Case& c = GetParam();
  if (!ops::has_storage(ctx(), c.dtype)) GTEST_SKIP() << "no " << dtype_name(c.dtype) << " support";
  if (c.path == ops::MatmulPath::cooperative)
    if (std::string why = without_coop(c.s.D); !why.empty()) GTEST_SKIP() << why;
  const ref::AttentionShape& s = c.s;
  const Shape q_shape{s.B, s.T, s.Hq, s.D}, kv_shape{s.B, s.T, s.Hkv, s.D};
  const int64_t nq = s.B * s.T * s.Hq * s.D, nkv = s.B * s.T * s.Hkv * s.D;
  // q spread wider than k, so that some rows' softmax is peaked.
  const ref::Vec q = test::stored(test::random_floats(nq, 1, -2, 2), c.dtype);
  const ref::Vec k = test::stored(test::random_floats(nkv, 2), c.dtype);
  const ref::Vec v = test::stored(test::random_floats(nkv, 3), c.dtype);
  const ref::Vec dout = test::stored(test::random_floats(nq, 4), c.dtype);

  Arena arena(ctx(), "attention");
  Tensor Q = arena.alloc(c.dtype, q_shape), K = arena.alloc(c.dtype, kv_shape), V = arena.alloc(c.dtype, kv_shape);
  Tensor Out = arena.alloc(c.dtype, q_shape), Lse = arena.alloc(DType::f32, {s.B, s.Hq, s.T});
  test::write_values(Q, q);
  test::write_values(K, k);
  test::write_values(V, v);
  ops::AttentionOptions opt{.tile = c.tile, .path = c.path};
  if (!c.lengths.empty()) {
    opt.lengths = arena.alloc(DType::i32, {s.B});
    ctx().write(opt.lengths, c.lengths);
  }

  const auto fwd = test::run_twice({Out, Lse}, {}, [&](Program& p) { ops::attention(p, Q, K, V, Out, Lse, opt); });
  const ref::AttentionForward want = ref::attention_forward(s, q, k, v, c.lengths);
  EXPECT_LE(test::rel_l2(fwd[0], want.out), forward_tol(c.dtype)) << "out";
  EXPECT_LE(test::rel_l2(fwd[1], want.lse), 1e-5) << "lse";
  if (!c.lengths.empty()) {
    expect_padding_zero("out", fwd[0], s, s.Hq, c.lengths, true);
    expect_padding_zero("lse", fwd[1], s, s.Hq, c.lengths, false);
  }
  if (!c.backward) return;

  // The backward takes the device's own out and lse, as training would.
  test::write_values(Out, fwd[0]);
  test::write_values(Lse, fwd[1]);
  Tensor dOut = arena.alloc(c.dtype, q_shape), dQ = arena.alloc(c.dtype, q_shape);
  Tensor dK = arena.alloc(c.dtype, kv_shape), dV = arena.alloc(c.dtype, kv_shape);
  Tensor scratch = arena.alloc(DType::f32, {ops::attention_backward_scratch_elems(Q)});
  test::write_values(dOut, dout);
  const auto bwd = test::run_twice({dQ, dK, dV, scratch}, {}, [&](Program& p) {
    ops::attention_backward(p, Q, K, V, Out, Lse, dOut, dQ, dK, dV, scratch, opt);
  });
  const ref::AttentionGrads grads = ref::attention_backward(s, q, k, v, dout, c.lengths);
  EXPECT_LE(test::rel_l2(bwd[0], grads.dq), backward_tol(c.dtype)) << "dq";
  EXPECT_LE(test::rel_l2(bwd[1], grads.dk), backward_tol(c.dtype)) << "dk";
  EXPECT_LE(test::rel_l2(bwd[2], grads.dv), backward_tol(c.dtype)) << "dv";
  if (!c.lengths.empty()) {
    expect_padding_zero("dq", bwd[0], s, s.Hq, c.lengths, true);
    expect_padding_zero("dk", bwd[1], s, s.Hkv, c.lengths, true);
    expect_padding_zero("dv", bwd[2], s, s.Hkv, c.lengths, true);
  }
}

using Tile = ops::AttentionTile;
constexpr DType f16 = DType::f16, bf16 = DType::bf16;

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    testing::Values(
        // MiniMind2's heads (8 query, 2 kv, dim 64) at every length; 512 forward only, but once backward too.
        Case{"h8_2_d64_t1_b2", {2, 1, 8, 2, 64}}, Case{"h8_2_d64_t7", {1, 7, 8, 2, 64}},
        Case{"h8_2_d64_t64_b2", {2, 64, 8, 2, 64}}, Case{"h8_2_d64_t257", {1, 257, 8, 2, 64}},
        Case{"h8_2_d64_t512", {1, 512, 8, 2, 64}}, Case{"h8_8_d32_t512_forward", {1, 512, 8, 8, 32}, DType::f32, false},
        // No sharing, and one kv head for all.
        Case{"h8_8_d32_t64", {1, 64, 8, 8, 32}}, Case{"h8_8_d64_t257", {1, 257, 8, 8, 64}},
        Case{"h4_1_d64_t7_b2", {2, 7, 4, 1, 64}}, Case{"h4_1_d32_t257", {1, 257, 4, 1, 32}},
        // The large tile: as given at head dim 32; at 64 its staged tile shrinks to fit 32 KiB.
        Case{"large_h8_2_d32_t257", {1, 257, 8, 2, 32}, DType::f32, true, {}, Tile::large},
        Case{"large_h4_1_d64_t200_b2", {2, 200, 4, 1, 64}, DType::f32, true, {}, Tile::large},
        // Padding: two sequences of different lengths in one batch.
        Case{"padded_h8_2_d64_t70", {2, 70, 8, 2, 64}, DType::f32, true, {70, 33}},
        Case{"padded_h4_1_d32_t100", {2, 100, 4, 1, 32}, DType::f32, true, {1, 77}, Tile::large},
        // f16 storage.
        Case{"f16_h8_2_d64_t257", {1, 257, 8, 2, 64}, f16}, Case{"f16_h8_8_d64_t7", {1, 7, 8, 8, 64}, f16},
        Case{"f16_h4_1_d32_t64_b2", {2, 64, 4, 1, 32}, f16},
        Case{"f16_h8_2_d64_t512_forward", {1, 512, 8, 2, 64}, f16, false},
        Case{"f16_padded_h8_2_d64_t64", {2, 64, 8, 2, 64}, f16, true, {50, 64}},
        // bf16 storage, the same shapes.
        Case{"bf16_h8_2_d64_t257", {1, 257, 8, 2, 64}, bf16}, Case{"bf16_h8_8_d64_t7", {1, 7, 8, 8, 64}, bf16},
        Case{"bf16_h4_1_d32_t64_b2", {2, 64, 4, 1, 32}, bf16},
        Case{"bf16_h8_2_d64_t512_forward", {1, 512, 8, 2, 64}, bf16, false},
        Case{"bf16_padded_h8_2_d64_t64", {2, 64, 8, 2, 64}, bf16, true, {50, 64}}),
    [](const auto& info) { return info.param.name; });

// The cooperative kernels (f16 only) on emulated fragments, which any device runs, and on tensor cores where
// the device has them (else skipped, saying why): lengths that are not multiples of the 64-row blocks or of
// the staged tiles, several key tiles per block (the forward's rescale), grouped heads, padding, and head dim
// 48, whose fragments do not fill whole rounds of the write-out. Each head dim costs lavapipe ~10 s of
// compiling under validation; the runs themselves are short.
using Path = ops::MatmulPath;
std::vector<Case> coop_cases(Path path) {
  const std::string name = path == Path::emulated ? "emulated_" : "coop_";
  return {Case{name + "h4_2_d64_t77", {1, 77, 4, 2, 64}, f16, true, {}, Tile::automatic, path},
          Case{name + "padded_h4_2_d32_t45_b2", {2, 45, 4, 2, 32}, f16, true, {45, 29}, Tile::automatic, path},
          Case{name + "padded_h4_4_d32_t150", {2, 150, 4, 4, 32}, f16, true, {150, 97}, Tile::automatic, path},
          Case{name + "h2_1_d48_t70_forward", {1, 70, 2, 1, 48}, f16, false, {}, Tile::automatic, path}};
}
INSTANTIATE_TEST_SUITE_P(Emulated, AttentionTest, testing::ValuesIn(coop_cases(Path::emulated)),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Cooperative, AttentionTest, testing::ValuesIn(coop_cases(Path::cooperative)),
                         [](const auto& info) { return info.param.name; });

// The reference backward is the gradient of the reference forward: central differences of
// L = sum(dout ∘ out) on a tiny grouped, padded case.
TEST(AttentionReference, BackwardIsGradientOfForward) {
  const ref::AttentionShape s{2, 5, 4, 2, 3};
  const std::vector<int32_t> lengths{5, 3};
  const int64_t nq = s.B * s.T * s.Hq * s.D, nkv = s.B * s.T * s.Hkv * s.D;
  ref::Vec q = test::to_double(test::random_floats(nq, 5, -2, 2)), k = test::to_double(test::random_floats(nkv, 6));
  ref::Vec v = test::to_double(test::random_floats(nkv, 7)), dout = test::to_double(test::random_floats(nq, 8));
  auto loss = [&] {
    const ref::Vec out = ref::attention_forward(s, q, k, v, lengths).out;
    double l = 0;
    for (size_t i = 0; i < out.size(); ++i) l += dout[i] * out[i];
    return l;
  };
  const ref::AttentionGrads g = ref::attention_backward(s, q, k, v, dout, lengths);
  const double h = 1e-5;
  for (auto [x, want, name] : {std::tuple{&q, &g.dq, "dq"}, {&k, &g.dk, "dk"}, {&v, &g.dv, "dv"}}) {
    ref::Vec numeric(x->size());
    for (size_t i = 0; i < x->size(); ++i) {
      const double keep = (*x)[i];
      (*x)[i] = keep + h;
      const double up = loss();
      (*x)[i] = keep - h;
      numeric[i] = (up - loss()) / (2 * h);
      (*x)[i] = keep;
    }
    EXPECT_LE(test::rel_l2(*want, numeric), 1e-8) << name;
  }
}

// q, k, v and outputs as views at offsets that are not aligned for binding, all in one buffer.
TEST(AttentionViews, UnalignedOffsets) {
  const ref::AttentionShape s{2, 9, 4, 2, 8};
  const Shape q_shape{s.B, s.T, s.Hq, s.D}, kv_shape{s.B, s.T, s.Hkv, s.D};
  const int64_t nq = s.B * s.T * s.Hq * s.D, nkv = s.B * s.T * s.Hkv * s.D, nl = s.B * s.Hq * s.T;
  Arena arena(ctx(), "attention");
  Tensor all = arena.alloc(DType::f32, {4 * nq + 4 * nkv + 2 * nl + 64});
  int64_t at = 1;
  auto next = [&](Shape shape) {
    Tensor t = all.view(at, shape);
    at += t.numel() + 3;  // odd gaps: no tensor but the first starts aligned
    return t;
  };
  Tensor Q = next(q_shape), K = next(kv_shape), V = next(kv_shape), Out = next(q_shape), Lse = next({s.B, s.Hq, s.T});
  Tensor dOut = next(q_shape), dQ = next(q_shape), dK = next(kv_shape), dV = next(kv_shape), scratch = next({nl});
  const auto q = test::random_floats(nq, 9, -2, 2), k = test::random_floats(nkv, 10), v = test::random_floats(nkv, 11);
  const auto dout = test::random_floats(nq, 12);
  ctx().write(Q, q);
  ctx().write(K, k);
  ctx().write(V, v);
  ctx().write(dOut, dout);
  const auto got = test::run_twice({Out, Lse, dQ, dK, dV}, {}, [&](Program& p) {
    ops::attention(p, Q, K, V, Out, Lse);
    ops::attention_backward(p, Q, K, V, Out, Lse, dOut, dQ, dK, dV, scratch);
  });
  const ref::Vec qd = test::to_double(q), kd = test::to_double(k), vd = test::to_double(v);
  const ref::AttentionForward f = ref::attention_forward(s, qd, kd, vd);
  const ref::AttentionGrads g = ref::attention_backward(s, qd, kd, vd, test::to_double(dout));
  EXPECT_LE(test::rel_l2(got[0], f.out), 1e-5) << "out";
  EXPECT_LE(test::rel_l2(got[1], f.lse), 1e-5) << "lse";
  EXPECT_LE(test::rel_l2(got[2], g.dq), 1e-4) << "dq";
  EXPECT_LE(test::rel_l2(got[3], g.dk), 1e-4) << "dk";
  EXPECT_LE(test::rel_l2(got[4], g.dv), 1e-4) << "dv";
}

// Each bad call throws vkm::Error naming the offending tensor, and adds nothing to the program.
TEST(AttentionErrors, BadShapesThrow) {
  Arena arena(ctx(), "attention");
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  Tensor q = f32({2, 5, 4, 8}), k = f32({2, 5, 2, 8}), v = f32({2, 5, 2, 8}), out = f32({2, 5, 4, 8});
  Tensor lse = f32({2, 4, 5}), dout = f32({2, 5, 4, 8}), dq = f32({2, 5, 4, 8}), dk = f32({2, 5, 2, 8});
  Tensor dv = f32({2, 5, 2, 8}), scratch = f32({40});
  Program p(ctx(), "bad shapes");
  expect_error("f32[2,5,3,8]", [&] { ops::attention(p, q, f32({2, 5, 3, 8}), f32({2, 5, 3, 8}), out, lse); });
  expect_error("f32[2,5,2,6]", [&] { ops::attention(p, q, k, f32({2, 5, 2, 6}), out, lse); });  // v differs from k
  expect_error("f32[2,6,2,8]", [&] { ops::attention(p, q, f32({2, 6, 2, 8}), f32({2, 6, 2, 8}), out, lse); });
  expect_error("f32[2,5,4,6]", [&] {  // head dim not a multiple of 4
    ops::attention(p, f32({2, 5, 4, 6}), f32({2, 5, 2, 6}), f32({2, 5, 2, 6}), f32({2, 5, 4, 6}), f32({2, 4, 5}));
  });
  expect_error("f16[2,5,2,8]", [&] { ops::attention(p, q, arena.alloc(DType::f16, {2, 5, 2, 8}), v, out, lse); });
  expect_error("lse f32[2,5,4]", [&] { ops::attention(p, q, k, v, out, f32({2, 5, 4})); });
  expect_error("out f32[2,5,4,4]", [&] { ops::attention(p, q, k, v, f32({2, 5, 4, 4}), lse); });
  expect_error("lengths f32[2]", [&] { ops::attention(p, q, k, v, out, lse, {.lengths = f32({2})}); });
  expect_error("lengths i32[3]",
               [&] { ops::attention(p, q, k, v, out, lse, {.lengths = arena.alloc(DType::i32, {3})}); });
  expect_error("out f32[2,5,4,8]", [&] { ops::attention(p, q, k, v, q, lse); });  // out overlaps q
  expect_error("scratch f32[39]",
               [&] { ops::attention_backward(p, q, k, v, out, lse, dout, dq, dk, dv, scratch.view(1, {39})); });
  expect_error("dk f32[2,5,4,8]", [&] {
    ops::attention_backward(p, q, k, v, out, lse, dout, dq, f32({2, 5, 4, 8}), dv, scratch);
  });
  expect_error("dv f32[2,5,2,8]", [&] {  // dv overlaps dk
    ops::attention_backward(p, q, k, v, out, lse, dout, dq, dk, dk, scratch);
  });
  EXPECT_EQ(p.dispatch_count(), 0u);
}

// The path choice, on devices made by hand: a GPU as NVIDIA's driver describes one, less one thing at a time.
TEST(AttentionPathChoice, TensorCoresForF16AtHeadDimsOf16) {
  for (int64_t D : {16, 64, 96, 128, 256}) {
    const ops::MatmulChoice c = ops::choose_attention_path(test::tensor_core_gpu(), f16, D, true);
    EXPECT_EQ(c.path, Path::cooperative) << D;
    EXPECT_EQ(c.describe(), "cooperative matrix 16x16x16 (VK_NV_cooperative_matrix)") << D;
  }
}

TEST(AttentionPathChoice, TiledOtherwise) {
  struct Case {
    std::string what;  // what the call or the device lacks
    DType dtype;
    int64_t D;
    std::function<void(DeviceInfo&)> take;
    std::string why;  // what the choice must say
  };
  const Case cases[] = {
      {"f16 storage", DType::f32, 64, {}, "f32 storage: the cooperative kernels take f16"},
      {"f16 storage", bf16, 64, {}, "bf16 storage: the cooperative kernels take f16"},
      {"a head dim of 16s", f16, 40, {}, "head dim 40 is not a multiple of 16"},
      {"shared memory", f16, 256, [](DeviceInfo& d) { d.max_shared_memory = 40 << 10; },
       "head dim 256 needs 48900 bytes of shared memory, the device has 40960"},
      {"the extension", f16, 64, [](DeviceInfo& d) { d.nv_cooperative_matrix = false; }, "no VK_NV_cooperative_matrix"},
      {"the 16x16x16 shape", f16, 64,
       [](DeviceInfo& d) { std::erase_if(d.nv_coop_shapes, [](const CoopMatrixShape& f) { return f.n == 16; }); },
       "no 16x16x16 VK_NV_cooperative_matrix shape for f16 x f16 + f32 in a subgroup"},
      {"subgroups of 32", f16, 64,
       [](DeviceInfo& d) { d.subgroup_size = d.min_subgroup_size = d.max_subgroup_size = 64; },
       "subgroups of 64 invocations, the kernels need 32"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("without " + c.what);
    DeviceInfo d = test::tensor_core_gpu();
    if (c.take) c.take(d);
    const ops::MatmulChoice got = ops::choose_attention_path(d, c.dtype, c.D, true);
    EXPECT_EQ(got.path, Path::tiled);
    EXPECT_EQ(got.why, c.why);
  }
  EXPECT_EQ(ops::choose_attention_path(test::tensor_core_gpu(), f16, 64, false).why,
            "cooperative matrix turned off: --no-coopmat or VKMIND_NO_COOPMAT");
}

// Asking for a cooperative path where it does not apply names the device and the reason, and records nothing.
TEST(AttentionPathChoice, ForcedWhereUnavailableThrows) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no f16 support";
  Arena arena(ctx(), "attention");
  Program p(ctx(), "forced");
  const std::string device = "device '" + ctx().info().name + "' cannot take it: ";
  auto call = [&](DType t, int64_t D, Path path, bool backward) {
    auto alloc = [&](Shape s) { return arena.alloc(t, std::move(s)); };
    Tensor q = alloc({1, 5, 2, D}), k = alloc({1, 5, 1, D}), v = alloc({1, 5, 1, D}), out = alloc({1, 5, 2, D});
    Tensor lse = arena.alloc(DType::f32, {1, 2, 5}), scratch = arena.alloc(DType::f32, {10});
    const ops::AttentionOptions opt{.path = path};
    if (!backward) return ops::attention(p, q, k, v, out, lse, opt);
    ops::attention_backward(p, q, k, v, out, lse, alloc(q.shape), alloc(q.shape), alloc(k.shape), alloc(k.shape),
                            scratch, opt);
  };
  expect_error("emulated cooperative path was asked for, but " + device + "f32 storage",
               [&] { call(DType::f32, 16, Path::emulated, false); });
  expect_error(device + "head dim 8 is not a multiple of 16", [&] { call(f16, 8, Path::emulated, true); });
  expect_error("cooperative-matrix path was asked for, but " + device + "bf16 storage",
               [&] { call(bf16, 16, Path::cooperative, false); });
  if (std::string why = without_coop(16); !why.empty())
    expect_error(device + ops::choose_attention_path(ctx().info(), f16, 16, ctx().allows_cooperative_matrix()).why,
                 [&] { call(f16, 16, Path::cooperative, true); });
  EXPECT_EQ(p.dispatch_count(), 0u);
}

// Without a path asked for, f16 attention takes the cooperative kernels exactly where choose_attention_path
// says so (seen in the labels of a profiled program).
TEST(AttentionPathChoice, AutomaticFollowsTheChoice) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no f16 support";
  if (!ctx().timestamp_bits()) GTEST_SKIP() << "no timestamps to label dispatches";
  const int64_t T = 7, D = 64;
  Arena arena(ctx(), "attention");
  auto alloc = [&](Shape s) { return arena.alloc(f16, std::move(s)); };
  Tensor q = alloc({1, T, 8, D}), k = alloc({1, T, 2, D}), v = alloc({1, T, 2, D}), out = alloc(q.shape);
  Tensor lse = arena.alloc(DType::f32, {1, 8, T}), scratch = arena.alloc(DType::f32, {8 * T});
  for (const Tensor& t : {q, k, v}) test::write_values(t, test::random_floats(size_t(t.numel()), 30));
  Program p(ctx(), "automatic", /*profile=*/true);
  ops::attention(p, q, k, v, out, lse);
  ops::attention_backward(p, q, k, v, out, lse, alloc(q.shape), alloc(q.shape), alloc(k.shape), alloc(k.shape),
                          scratch);
  ctx().wait(ctx().submit(p));
  const std::string suffix = without_coop(D).empty() ? "_f16_coop " : "_f16 ";
  for (const DispatchTiming& t : p.timings()) EXPECT_NE(t.label.find(suffix), std::string::npos) << t.label;
}

}  // namespace
}  // namespace vkm
