#include "engine/ops/grad_norm.hpp"

#include <cmath>
#include <cstring>

#include "engine/error.hpp"
#include "engine/memory.hpp"
#include "tests/reference/grad_norm.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

// Gradients, stats at an unaligned offset in host-visible memory (where a trainer reads them), and scratch.
struct Tensors {
  Arena arena{ctx(), "grad_norm"};
  Arena host{ctx(), "grad_norm.host", MemoryKind::host};
  Tensor grads, stats, scratch;
  explicit Tensors(int64_t n)
      : grads(arena.alloc(DType::f32, {n})),
        stats(host.alloc(DType::f32, {ops::kGradStatsElems + 1}).view(1, {ops::kGradStatsElems})),
        scratch(arena.alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx(), n)})) {}
  ops::GradStats read() const {
    ops::GradStats s;
    std::vector<float> v = ctx().read<float>(stats);
    std::memcpy(&s, v.data(), sizeof s);
    return s;
  }
};

class GradNormTest : public testing::TestWithParam<int64_t> {};

TEST_P(GradNormTest, NormAndClip) {
  const int64_t n = GetParam();
  Tensors t(n);
  const std::vector<float> g = test::random_floats(n, uint32_t(n), -2.0f, 2.0f);
  ctx().write(t.grads, g);
  const double norm = ref::l2_norm(test::to_double(g));
  // No clipping, a limit above the norm, and one below it.
  for (float max_norm : {0.0f, float(2 * norm), float(norm / 3)}) {
    SCOPED_TRACE(testing::Message() << "max_norm " << max_norm);
    Program p(ctx(), "grad_norm");
    ops::grad_norm(p, t.grads, max_norm, t.stats, t.scratch);
    test::run_twice_bytes({t.stats}, [&] { test::poison(t.scratch); }, [&] { ctx().wait(ctx().submit(p)); });
    const ops::GradStats s = t.read();
    EXPECT_LE(test::rel_l2({s.norm}, {norm}), 1e-5) << "norm " << s.norm << ", want " << norm;
    const double clip = ref::clip_factor(norm, max_norm);
    EXPECT_LE(test::rel_l2({s.clip}, {clip}), 1e-5) << "clip " << s.clip << ", want " << clip;
    EXPECT_EQ(s.non_finite, 0.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, GradNormTest, testing::Values(1, 7, 257, 4099, 1000003));

// A NaN or an infinity anywhere, or squares past fp32's range, raise the flag and zero the clip factor.
TEST(GradNormNonFinite, RaisesTheFlag) {
  const int64_t n = 5000;
  Tensors t(n);
  struct Case {
    const char* what;
    int64_t at;
    float value;
  };
  for (const Case& c : {Case{"NaN", 4999, NAN}, Case{"+inf", 0, INFINITY}, Case{"-inf", 2500, -INFINITY},
                        Case{"overflowing square", 1234, 1e20f}}) {
    SCOPED_TRACE(c.what);
    std::vector<float> g = test::random_floats(n, 11);
    g[c.at] = c.value;
    ctx().write(t.grads, g);
    test::poison(t.stats);
    test::run([&](Program& p) { ops::grad_norm(p, t.grads, 1.0f, t.stats, t.scratch); });
    const ops::GradStats s = t.read();
    EXPECT_FALSE(std::isfinite(s.norm)) << s.norm;
    EXPECT_EQ(s.clip, 0.0f);
    EXPECT_EQ(s.non_finite, 1.0f);
  }
}

TEST(GradNormErrors, RejectsBadTensors) {
  const int64_t n = 5000;
  Arena arena(ctx(), "errors");
  Tensor grads = arena.alloc(DType::f32, {n}), stats = arena.alloc(DType::f32, {4});
  Tensor scratch = arena.alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx(), n) + 1});
  Program p(ctx(), "errors");
  const Tensor three = stats.view(0, {3});
  EXPECT_THROW(ops::grad_norm(p, grads, 1, stats, scratch), Error);                          // four stats
  EXPECT_THROW(ops::grad_norm(p, grads.as(DType::i32), 1, three, scratch), Error);          // int gradients
  EXPECT_THROW(ops::grad_norm(p, grads, 1, three, scratch.view(0, {scratch.numel() - 2})), Error);  // too small
  EXPECT_THROW(ops::grad_norm(p, grads, 1, three, scratch.view(1, {scratch.numel() - 1})), Error);  // unaligned
  EXPECT_THROW(ops::grad_norm(p, grads.view(1, {n - 1}), 1, three, scratch), Error);       // unaligned grads
  EXPECT_THROW(ops::grad_norm(p, grads, 1, grads.view(0, {3}), scratch), Error);            // stats in grads
  EXPECT_THROW(ops::grad_norm(p, grads, 1, three, grads), Error);                           // scratch is grads
}

}  // namespace
}  // namespace vkm
