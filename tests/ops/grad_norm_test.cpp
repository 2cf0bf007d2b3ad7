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

// Loss scaling: one recorded program resubmitted over a sequence of steps, the state living on the device. The
// statistics are those of the unscaled gradients, and the scale follows torch's GradScaler (floored, capped).
TEST(GradNormLossScale, FollowsTheReferenceOverSteps) {
  const int64_t n = 3001;
  const int accum = 4, growth = 3;
  const float max_norm = 1.0f;
  Tensors t(n);
  Arena host(ctx(), "loss_scale.host", MemoryKind::host);
  // At odd offsets: views anywhere.
  const Tensor state = host.alloc(DType::f32, {ops::kLossScaleStateElems + 1}).view(1, {ops::kLossScaleStateElems});
  const Tensor grad_scale = host.alloc(DType::f32, {2}).view(1, {1});
  ops::LossScaling scaling{state, grad_scale, accum, uint32_t(growth)};
  Program p(ctx(), "grad_norm.scaled");
  ops::grad_norm(p, t.grads, max_norm, t.stats, t.scratch, &scaling);

  ref::LossScale want{4.0, 1.0, 5.0};  // a scale near its floor, so that halving meets it
  ctx().write(state, std::vector<float>{float(want.scale), float(want.clean_steps), float(want.skipped_steps)});
  const std::vector<float> g = test::random_floats(n, 3, -0.1f, 0.1f);
  // Clean steps grow the scale; overflows shrink it to the floor; the cap holds.
  const char* steps = "ccc iiiic ccc ccc ccc";
  for (int i = 0; steps[i]; ++i) {
    if (steps[i] == ' ') continue;
    SCOPED_TRACE(testing::Message() << "step " << i << " '" << steps[i] << "' at scale " << want.scale);
    std::vector<float> scaled(g);
    for (float& x : scaled) x *= float(want.scale);
    if (steps[i] == 'i') scaled[size_t(i) * 97 % size_t(n)] = INFINITY;
    ctx().write(t.grads, scaled);
    test::poison(t.stats);
    test::poison(grad_scale);
    ctx().wait(ctx().submit(p));
    const ref::ScaledGradStats r =
        ref::scaled_grad_stats(test::to_double(scaled), max_norm, want, accum, growth);
    const ops::GradStats s = t.read();
    EXPECT_EQ(s.non_finite, r.non_finite ? 1.0f : 0.0f);
    if (!r.non_finite) {
      EXPECT_LE(test::rel_l2({s.norm}, {r.norm}), 1e-5) << "norm " << s.norm << ", want " << r.norm;
      EXPECT_LE(test::rel_l2({s.clip}, {r.clip}), 1e-5) << "clip " << s.clip << ", want " << r.clip;
    } else {
      EXPECT_EQ(s.clip, 0.0f);
    }
    const std::vector<float> got = ctx().read<float>(state);
    EXPECT_EQ(got, (std::vector<float>{float(r.next.scale), float(r.next.clean_steps), float(r.next.skipped_steps)}));
    EXPECT_EQ(ctx().read<float>(grad_scale)[0], float(r.grad_scale));
    want = r.next;
  }
  EXPECT_EQ(want.skipped_steps, 9.0);
  EXPECT_EQ(want.scale, 8.0);  // 4 -> 8, down to the floor of 1 by the overflows, then doubled every 3 clean steps

  // The cap: at 2^24 a clean run leaves the scale where it is.
  ctx().write(state, std::vector<float>{16777216.0f, 2.0f, 0.0f});
  ctx().write(t.grads, g);
  ctx().wait(ctx().submit(p));
  EXPECT_EQ(ctx().read<float>(state), (std::vector<float>{16777216.0f, 0.0f, 0.0f}));
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

  Tensor state = arena.alloc(DType::f32, {3}), grad_scale = arena.alloc(DType::f32, {1});
  auto scaled = [&](ops::LossScaling s) { ops::grad_norm(p, grads, 1, three, scratch, &s); };
  test::expect_error("loss scale state", [&] { scaled({state.view(0, {2}), grad_scale}); });
  test::expect_error("grad_scale", [&] { scaled({state, state.view(0, {1})}); });
  test::expect_error("grad_scale", [&] { scaled({state, grad_scale.as(DType::i32)}); });
  test::expect_error("positive", [&] { scaled({state, grad_scale, 0}); });
  test::expect_error("overlap", [&] { scaled({grads.view(0, {3}), grad_scale}); });
}

}  // namespace
}  // namespace vkm
