#include "engine/ops/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/kv_cache.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

constexpr double kTolF32 = 1e-5, kTolF16 = 5e-3;

struct Case {
  const char* name;
  ref::KvShape s;
  std::vector<int32_t> positions;  // [B, T]
};

// Positions of every kind: a fresh sequence, one in the middle, padding (-1) in front of a shorter prompt or of
// a continued one, rows past the cache (dropped by append, clamped by attention), chunk boundaries of the split.
const Case kCases[] = {
    {"decode", {3, 1, 5, 4, 2, 16}, {0, 2, 4}},
    {"decode_long", {2, 1, 3000, 4, 2, 64}, {2999, 1234}},
    {"prefill", {2, 7, 100, 3, 1, 100}, {0, 1, 2, 3, 4, 5, 6, 60, 61, 62, 63, 64, 65, 66}},
    {"padded", {3, 4, 70, 8, 2, 32}, {-1, -1, 0, 1, -1, 30, 31, 32, 67, 68, 69, 70}},
    {"mha_d4", {1, 3, 130, 2, 2, 4}, {63, 64, 65}},
};

class KvCacheTest : public testing::TestWithParam<std::tuple<DType, int>> {};

// Append then attention in one program, as a decoding step records them, from caches holding older rows.
TEST_P(KvCacheTest, AppendThenAttend) {
  const auto [dtype, index] = GetParam();
  if (dtype == DType::f16 && !ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support";
  const Case& c = kCases[index];
  const ref::KvShape& s = c.s;
  Arena arena(ctx(), "kv_cache");
  auto f32 = [&](Shape shape) { return arena.alloc(DType::f32, std::move(shape)); };
  Tensor q = f32({s.B, s.T, s.Hq, s.D}), k = f32({s.B, s.T, s.Hkv, s.D}), v = f32({s.B, s.T, s.Hkv, s.D});
  Tensor kc = arena.alloc(dtype, {s.B, s.S, s.Hkv, s.D}), vc = arena.alloc(dtype, {s.B, s.S, s.Hkv, s.D});
  Tensor positions = arena.alloc(DType::i32, {s.B, s.T}), out = f32(q.shape);
  Tensor scratch = f32({ops::kv_attention_scratch_elems(q, s.S)});
  const auto qv = test::random_floats(q.numel(), 1, -2, 2), kv = test::random_floats(k.numel(), 2),
             vv = test::random_floats(v.numel(), 3), kcv = test::random_floats(kc.numel(), 4),
             vcv = test::random_floats(vc.numel(), 5);
  auto got = test::run_twice(
      {out, kc, vc},
      [&] {
        ctx().write(q, qv);
        ctx().write(k, kv);
        ctx().write(v, vv);
        test::write_values(kc, kcv);
        test::write_values(vc, vcv);
        ctx().write(positions, c.positions);
        test::poison(scratch);
      },
      [&](Program& p) {
        ops::kv_append(p, k, v, kc, vc, positions);
        ops::kv_attention(p, q, kc, vc, positions, out, scratch);
      });
  ref::Vec want_kc = test::stored(kcv, dtype), want_vc = test::stored(vcv, dtype);
  ref::kv_append(s, test::stored(kv, dtype), test::stored(vv, dtype), c.positions, want_kc, want_vc);
  EXPECT_EQ(got[1], want_kc) << "k cache";
  EXPECT_EQ(got[2], want_vc) << "v cache";
  const ref::Vec want = ref::kv_attention(s, test::to_double(qv), want_kc, want_vc, c.positions);
  EXPECT_LE(test::rel_l2(got[0], want), dtype == DType::f16 ? kTolF16 : kTolF32);
}

INSTANTIATE_TEST_SUITE_P(Cases, KvCacheTest,
                         testing::Combine(testing::Values(DType::f32, DType::f16),
                                          testing::Range(0, int(std::size(kCases)))),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_" +
                                  kCases[std::get<1>(info.param)].name;
                         });

// The recorded program serves every step: the positions advance between submissions, nothing is re-recorded,
// and each step's output equals the reference for that step's cache.
TEST(KvCacheDecode, ResubmittedAsPositionsAdvance) {
  const ref::KvShape s{2, 1, 40, 4, 2, 16};
  Arena arena(ctx(), "kv_decode");
  Arena host(ctx(), "kv_decode.host", MemoryKind::host, 1 << 16);
  Tensor q = arena.alloc(DType::f32, {s.B, 1, s.Hq, s.D}), k = arena.alloc(DType::f32, {s.B, 1, s.Hkv, s.D});
  Tensor v = arena.alloc(DType::f32, k.shape), out = arena.alloc(DType::f32, q.shape);
  Tensor kc = arena.alloc(DType::f32, {s.B, s.S, s.Hkv, s.D}), vc = arena.alloc(DType::f32, kc.shape);
  Tensor scratch = arena.alloc(DType::f32, {ops::kv_attention_scratch_elems(q, s.S)});
  Tensor positions = host.alloc(DType::i32, {s.B, 1});
  int32_t* pos = reinterpret_cast<int32_t*>(positions.buffer->mapped() + positions.offset);
  // NaN everywhere (rows not yet appended must never be read) but the 20 rows the second sequence starts with.
  ref::Vec want_kc(kc.numel(), std::nan("")), want_vc(vc.numel(), std::nan(""));
  const int64_t W = s.Hkv * s.D;
  const auto older_k = test::random_floats(20 * W, 70), older_v = test::random_floats(20 * W, 71);
  std::copy(older_k.begin(), older_k.end(), want_kc.begin() + s.S * W);
  std::copy(older_v.begin(), older_v.end(), want_vc.begin() + s.S * W);
  test::write_values(kc, want_kc);
  test::write_values(vc, want_vc);
  Program p(ctx(), "decode");
  ops::kv_append(p, k, v, kc, vc, positions);
  ops::kv_attention(p, q, kc, vc, positions, out, scratch);
  for (int32_t step = 0; step < 12; ++step) {
    const std::vector<int32_t> at{step, step + 20};
    const auto qv = test::random_floats(q.numel(), 10 + step), kv = test::random_floats(k.numel(), 30 + step),
               vv = test::random_floats(v.numel(), 50 + step);
    ctx().write(q, qv);
    ctx().write(k, kv);
    ctx().write(v, vv);
    std::copy(at.begin(), at.end(), pos);
    ctx().wait(ctx().submit(p));
    ref::kv_append(s, test::to_double(kv), test::to_double(vv), at, want_kc, want_vc);
    const ref::Vec want = ref::kv_attention(s, test::to_double(qv), want_kc, want_vc, at);
    EXPECT_LE(test::rel_l2(test::read_values(out), want), kTolF32) << "step " << step;
  }
}

TEST(KvCacheErrors, RejectsBadShapesTypesAndScratch) {
  Arena arena(ctx(), "errors");
  const int64_t B = 2, T = 1, S = 8, Hq = 4, Hkv = 2, D = 8;
  auto f32 = [&](Shape s) { return arena.alloc(DType::f32, std::move(s)); };
  Tensor q = f32({B, T, Hq, D}), k = f32({B, T, Hkv, D}), v = f32({B, T, Hkv, D}), out = f32({B, T, Hq, D});
  Tensor kc = f32({B, S, Hkv, D}), vc = f32({B, S, Hkv, D}), positions = arena.alloc(DType::i32, {B, T});
  Tensor scratch = f32({ops::kv_attention_scratch_elems(q, S)});
  Program p(ctx(), "errors");
  test::expect_error("positions must be i32 [B, T] = [2, 1]",
                     [&] { ops::kv_append(p, k, v, kc, vc, arena.alloc(DType::i32, {B})); });
  test::expect_error("k and v must be f32", [&] { ops::kv_append(p, q, q, kc, vc, positions); });
  test::expect_error("the caches must be non-empty", [&] { ops::kv_append(p, k, v, kc, f32({B, S + 1, Hkv, D}), positions); });
  test::expect_error("a cache overlaps", [&] { ops::kv_append(p, k, vc.flat().view(0, k.shape), kc, vc, positions); });
  test::expect_error("multiple of the kv heads", [&] {
    Tensor q3 = f32({B, T, 3, D});
    ops::kv_attention(p, q3, kc, vc, positions, f32({B, T, 3, D}), f32({ops::kv_attention_scratch_elems(q3, S)}));
  });
  test::expect_error("kv_attention_scratch_elems",
                     [&] { ops::kv_attention(p, q, kc, vc, positions, out, scratch.view(0, {scratch.numel() - 1})); });
  test::expect_error("out must be f32 with q's shape", [&] { ops::kv_attention(p, q, kc, vc, positions, k, scratch); });
  test::expect_error("overlaps an input", [&] { ops::kv_attention(p, q, kc, vc, positions, q, scratch); });
  test::expect_error("multiple of 4", [&] {
    Tensor q6 = f32({B, T, Hq, 6}), c6 = f32({B, S, Hkv, 6}), c6v = f32({B, S, Hkv, 6});
    ops::kv_attention(p, q6, c6, c6v, positions, f32(q6.shape), f32({ops::kv_attention_scratch_elems(q6, S)}));
  });
  EXPECT_NO_THROW(ops::kv_attention(p, q, kc, vc, positions, out, scratch));
}

}  // namespace
}  // namespace vkm
