#include "engine/ops/adamw.hpp"

#include <cmath>
#include <cstring>

#include "engine/error.hpp"
#include "engine/memory.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/grad_norm.hpp"
#include "tests/reference/adamw.hpp"
#include "tests/reference/cast.hpp"
#include "tests/reference/grad_norm.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {

namespace {

using test::ctx;

constexpr ops::AdamWConfig kConfig{0.9f, 0.999f, 1e-8f, 0.1f};

ref::AdamWHyper hyper(const ops::AdamWConfig& c) { return {c.beta1, c.beta2, c.eps, c.weight_decay}; }

// The step's learning rate: a schedule, so that every step reads a new one.
float lr_at(uint32_t t) { return 0.02f * (1.0f + 0.5f * std::cos(float(t))); }

// An optimizer's state on the host: the double reference, and the fp32 values the device starts from.
struct HostState {
  ref::Vec p, m, v;
};

// The optimizer's tensors, views at unaligned offsets but for the gradients; step state and stats in host-visible
// memory, which the test writes between submissions as a trainer would.
struct Tensors {
  Arena arena{ctx(), "adamw"};
  Arena host{ctx(), "adamw.host", MemoryKind::host};
  Tensor params, grads, m, v, step, stats, half;

  explicit Tensors(int64_t n, DType half_type = DType::f32)
      : params(arena.alloc(DType::f32, {n + 3}).view(3, {n})),
        grads(arena.alloc(DType::f32, {n})),  // aligned, as grad_norm needs
        m(arena.alloc(DType::f32, {n + 1}).view(1, {n})),
        v(arena.alloc(DType::f32, {n + 2}).view(2, {n})),
        step(host.alloc(DType::u32, {3}).view(1, {ops::kAdamWStepElems})),
        stats(host.alloc(DType::f32, {5}).view(2, {ops::kGradStatsElems})) {
    if (half_type != DType::f32) half = arena.alloc(half_type, {n + 5}).view(5, {n});
  }

  void record(Program& p, const ops::AdamWConfig& c = kConfig) const {
    ops::adamw(p, c, params, grads, m, v, step, stats, half);
  }
  // Initial parameters, zero moments (as a fresh optimizer has), and the reference's copy of them.
  HostState start(uint32_t seed) const {
    std::vector<float> p0 = test::random_floats(params.numel(), seed);
    std::vector<float> zeros(params.numel(), 0.0f);
    ctx().write(params, p0);
    ctx().write(m, zeros);
    ctx().write(v, zeros);
    if (half) test::poison(half);
    return {test::to_double(p0), test::to_double(zeros), test::to_double(zeros)};
  }
  void set_stats(float clip, float non_finite) const {
    const float s[3] = {1.0f, clip, non_finite};
    std::memcpy(stats.buffer->mapped() + stats.offset, s, sizeof s);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> all;
    for (const Tensor* t : {&params, &m, &v, &half})
      if (*t) {
        std::vector<uint8_t> b = ctx().read<uint8_t>(*t);
        all.insert(all.end(), b.begin(), b.end());
      }
    return all;
  }
};

// The device state against the reference: moments, parameters, and (stricter, as it is what the steps
// changed) the parameters' displacement from where they started.
void expect_close(const Tensors& t, const HostState& want, const ref::Vec& p0) {
  ref::Vec p = test::to_double(ctx().read<float>(t.params));
  EXPECT_LE(test::rel_l2(test::to_double(ctx().read<float>(t.m)), want.m), 1e-5) << "m";
  EXPECT_LE(test::rel_l2(test::to_double(ctx().read<float>(t.v)), want.v), 1e-5) << "v";
  EXPECT_LE(test::rel_l2(p, want.p), 1e-5) << "params";
  ref::Vec moved(p.size()), want_moved(p.size());
  for (size_t i = 0; i < p.size(); ++i) {
    moved[i] = p[i] - p0[i];
    want_moved[i] = want.p[i] - p0[i];
  }
  EXPECT_LE(test::rel_l2(moved, want_moved), 1e-5) << "displacement";
}

// Runs `steps` steps of one recorded program from a fresh state, with new gradients, learning rate and t
// each step, comparing with the reference after each; returns the final bytes.
std::vector<uint8_t> run_steps(Tensors& t, uint32_t steps, float clip) {
  HostState want = t.start(7);
  const ref::Vec p0 = want.p;
  t.set_stats(clip, 0.0f);
  Program p(ctx(), "adamw");
  t.record(p);
  // Each gradient keeps its sign from step to step, so the displacement grows rather than cancels.
  const std::vector<float> direction = test::random_floats(t.params.numel(), 100);
  for (uint32_t step = 1; step <= steps; ++step) {
    SCOPED_TRACE(testing::Message() << "step " << step);
    std::vector<float> g = test::random_floats(t.params.numel(), 100 + step, 0.5f, 1.5f);
    for (size_t i = 0; i < g.size(); ++i) g[i] *= direction[i];
    ctx().write(t.grads, g);
    ops::write_adamw_step(t.step, {lr_at(step), step});
    ctx().wait(ctx().submit(p));
    ref::adamw_step(want.p, want.m, want.v, test::to_double(g), lr_at(step), step, clip, hyper(kConfig));
    expect_close(t, want, p0);
  }
  return t.bytes();
}

class AdamWTest : public testing::TestWithParam<int64_t> {};

TEST_P(AdamWTest, StepsMatchPyTorchFormula) {
  Tensors t(GetParam());
  std::vector<uint8_t> first = run_steps(t, 6, 1.0f);
  EXPECT_EQ(first, run_steps(t, 6, 1.0f)) << "two runs gave different bits";
}

TEST_P(AdamWTest, ClipFactorScalesGradients) {
  Tensors t(GetParam());
  run_steps(t, 3, 0.37f);
}

INSTANTIATE_TEST_SUITE_P(Sizes, AdamWTest, testing::Values(1, 7, 257, 4099, 100003));

// The fp32 master copy updates as ever, and the 16-bit copy is exactly the master rounded to it.
class AdamWHalfTest : public testing::TestWithParam<DType> {};

TEST_P(AdamWHalfTest, WritesTheRoundedMaster) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support";
  Tensors t(1000, GetParam());
  run_steps(t, 3, 1.0f);
  const std::vector<float> master = ctx().read<float>(t.params);
  EXPECT_EQ(ctx().read<uint8_t>(t.half), ref::store(test::to_double(master), GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Types, AdamWHalfTest, testing::Values(DType::f16, DType::bf16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// With the non-finite flag set nothing is written, the 16-bit copy included (it stays poisoned).
TEST(AdamWSkip, NonFiniteFlagSkipsTheStep) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support";
  Tensors t(4099, DType::f16);
  t.start(3);
  ctx().write(t.grads, test::random_floats(4099, 4));
  ops::write_adamw_step(t.step, {0.01f, 1});
  t.set_stats(1.0f, 1.0f);
  const std::vector<uint8_t> before = t.bytes();
  test::run([&](Program& p) { t.record(p); });
  EXPECT_EQ(t.bytes(), before);
}

// The trainer's sequence in one program: grad_norm on the device, then adamw reading its clip factor and
// flag. A step whose gradients hold a NaN is skipped; the next one proceeds (with t not advanced, as
// PyTorch's GradScaler skips optimizer.step()).
TEST(AdamWWithGradNorm, ClipsAndSkipsOnTheDevice) {
  const int64_t n = 5000;
  Tensors t(n);
  Arena arena(ctx(), "grad_norm");
  Tensor scratch = arena.alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx(), n)});
  HostState want = t.start(9);
  const ref::Vec p0 = want.p;
  const float max_norm = 5.0f;  // below the norm of every gradient here: it clips
  Program p(ctx(), "step");
  ops::grad_norm(p, t.grads, max_norm, t.stats, scratch);
  t.record(p);

  uint32_t step = 1;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(testing::Message() << "round " << round);
    std::vector<float> g = test::random_floats(n, 20 + round);
    const bool poisoned = round == 1;
    if (poisoned) g[n / 2] = NAN;
    ctx().write(t.grads, g);
    ops::write_adamw_step(t.step, {lr_at(step), step});
    const std::vector<uint8_t> before = t.bytes();
    ctx().wait(ctx().submit(p));
    const std::vector<float> stats = ctx().read<float>(t.stats);
    if (poisoned) {
      EXPECT_EQ(stats[2], 1.0f);
      EXPECT_EQ(t.bytes(), before) << "a non-finite step changed the state";
      continue;
    }
    const ref::Vec gd = test::to_double(g);
    const double clip = ref::clip_factor(ref::l2_norm(gd), max_norm);
    ASSERT_LT(clip, 1.0);
    EXPECT_EQ(stats[2], 0.0f);
    EXPECT_LE(test::rel_l2({stats[1]}, {clip}), 1e-5);
    ref::adamw_step(want.p, want.m, want.v, gd, lr_at(step), step, clip, hyper(kConfig));
    expect_close(t, want, p0);
    ++step;
  }
}

// Two parameter groups over one flat buffer, split at an unaligned element: weight decay on the first, none
// on the second (as trainers that exclude norms do), in one program.
TEST(AdamWRanges, WeightDecayPerRange) {
  const int64_t n = 1000, split = 333;
  Tensors t(n);
  HostState want = t.start(12);
  const ref::Vec p0 = want.p;
  std::vector<float> g = test::random_floats(n, 13);
  ctx().write(t.grads, g);
  ops::write_adamw_step(t.step, {0.05f, 1});
  t.set_stats(1.0f, 0.0f);
  ops::AdamWConfig no_decay = kConfig;
  no_decay.weight_decay = 0.0f;
  test::run([&](Program& p) {
    auto range = [&](const Tensor& x, int64_t a, int64_t b) { return x.view(a, {b - a}); };
    for (auto [a, b, c] : {std::tuple{int64_t(0), split, kConfig}, std::tuple{split, n, no_decay}})
      ops::adamw(p, c, range(t.params, a, b), range(t.grads, a, b), range(t.m, a, b), range(t.v, a, b), t.step,
                 t.stats);
  });
  auto part = [](const ref::Vec& x, int64_t a, int64_t b) { return ref::Vec(x.begin() + a, x.begin() + b); };
  HostState first{part(want.p, 0, split), part(want.m, 0, split), part(want.v, 0, split)};
  HostState second{part(want.p, split, n), part(want.m, split, n), part(want.v, split, n)};
  const ref::Vec gd = test::to_double(g);
  ref::adamw_step(first.p, first.m, first.v, part(gd, 0, split), 0.05, 1, 1.0, hyper(kConfig));
  ref::adamw_step(second.p, second.m, second.v, part(gd, split, n), 0.05, 1, 1.0, hyper(no_decay));
  for (HostState* s : {&first, &second}) {
    want.p.insert(want.p.end(), s->p.begin(), s->p.end());
    want.m.insert(want.m.end(), s->m.begin(), s->m.end());
    want.v.insert(want.v.end(), s->v.begin(), s->v.end());
  }
  want.p.erase(want.p.begin(), want.p.begin() + n);
  want.m.erase(want.m.begin(), want.m.begin() + n);
  want.v.erase(want.v.begin(), want.v.begin() + n);
  expect_close(t, want, p0);
}

// Buffers over maxStorageBufferRange (128 MiB on lavapipe) run in pieces; the views start off alignment.
TEST(AdamWLarge, BuffersInPieces) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t n = int64_t(range / 4) + 4101;
  Tensors t(n);
  // Cheap patterned inputs: a generator would take longer than the step.
  std::vector<float> p0(n), g(n);
  for (int64_t i = 0; i < n; ++i) {
    p0[i] = float(i % 2001 - 1000) * 1e-3f + 1e-4f;
    g[i] = float(i % 997 - 498) * 1e-3f + 3e-4f;
  }
  const std::vector<float> zeros(n, 0.0f);
  ctx().write(t.params, p0);
  ctx().write(t.grads, g);
  ctx().write(t.m, zeros);
  ctx().write(t.v, zeros);
  ops::write_adamw_step(t.step, {0.01f, 1});
  t.set_stats(0.5f, 0.0f);
  test::run([&](Program& p) { t.record(p); });
  HostState want{test::to_double(p0), test::to_double(zeros), test::to_double(zeros)};
  ref::adamw_step(want.p, want.m, want.v, test::to_double(g), 0.01, 1, 0.5, hyper(kConfig));
  expect_close(t, want, test::to_double(p0));
}

TEST(AdamWErrors, RejectsBadTensors) {
  const int64_t n = 100;
  Tensors t(n, ops::has_16bit(ctx()) ? DType::f16 : DType::f32);
  Arena arena(ctx(), "errors");
  Tensor other = arena.alloc(DType::f32, {n + 1}), half = arena.alloc(DType::f16, {n + 1});
  Program p(ctx(), "errors");
  auto call = [&](const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& step, const Tensor& stats,
                  const Tensor& h) { ops::adamw(p, kConfig, params, grads, m, t.v, step, stats, h); };
  EXPECT_THROW(call(t.params, other, t.m, t.step, t.stats, {}), Error);                       // lengths differ
  EXPECT_THROW(call(t.params, half.view(0, {n}), t.m, t.step, t.stats, {}), Error);          // f16 gradients
  EXPECT_THROW(call(t.params, t.grads, t.params, t.step, t.stats, {}), Error);                // m is params
  EXPECT_THROW(call(t.params, t.grads, t.m, other.view(0, {3}), t.stats, {}), Error);        // 3-element state
  EXPECT_THROW(call(t.params, t.grads, t.m, t.step, other.view(0, {2}), {}), Error);         // 2 stats
  EXPECT_THROW(call(t.params, t.grads, t.m, t.step, t.stats, other.view(0, {n})), Error);    // f32 copy
  EXPECT_THROW(call(t.params, t.grads, t.m, t.step, t.stats, half), Error);                  // copy too long
  EXPECT_THROW(call(t.params, t.grads, t.m, t.step, t.params.view(0, {3}), {}), Error);      // stats in params
  EXPECT_THROW(ops::write_adamw_step(other.view(0, {3}), {0.1f, 1}), Error);                 // 3 elements
}

}  // namespace
}  // namespace vkm
