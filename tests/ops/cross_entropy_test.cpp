#include "engine/ops/cross_entropy.hpp"

#include <cstring>
#include <random>
#include <tuple>

#include "engine/error.hpp"
#include "engine/memory.hpp"
#include "engine/ops/common.hpp"
#include "tests/reference/cast.hpp"
#include "tests/reference/cross_entropy.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {

namespace {

using test::ctx;

// One case's inputs: logits the dtype holds exactly; targets anywhere in [0, V), the first and last class
// included; a mask with zeros; and, from 7 rows on, two unmasked rows whose targets are out of range
// (-100 and V), which must count as masked.
struct Inputs {
  ref::Vec logits;
  std::vector<int32_t> targets;
  std::vector<float> mask;
};

Inputs make_inputs(int64_t rows, int64_t V, DType dtype, uint32_t seed) {
  Inputs in;
  in.logits = test::stored(test::random_floats(rows * V, seed, -4.0f, 4.0f), dtype);
  std::mt19937 rng(seed + 1);
  for (int64_t r = 0; r < rows; ++r) {
    in.targets.push_back(int32_t(rng() % uint32_t(V)));
    in.mask.push_back(rng() % 4 == 0 ? 0.0f : 1.0f);
  }
  in.targets[0] = 0;
  in.mask[0] = 1.0f;  // at least one row counts
  if (rows > 1) in.targets[rows - 1] = int32_t(V - 1);
  if (rows >= 7) {
    in.targets[2] = -100;
    in.targets[3] = int32_t(V);
    in.mask[2] = in.mask[3] = 1.0f;
  }
  return in;
}

struct Want {
  double loss;
  ref::Vec grad;
};
Want reference(const Inputs& in, int64_t V, double grad_scale) {
  const ref::Vec mask = test::to_double(in.mask);
  return {ref::cross_entropy_loss(in.logits, in.targets, mask, V),
          ref::cross_entropy_grad(in.logits, in.targets, mask, V, grad_scale)};
}

// A value the host writes into mapped memory between submissions, as a trainer would.
void set_mapped(const Tensor& t, float v) { std::memcpy(t.buffer->mapped() + t.offset, &v, sizeof v); }

// The tensors of one case: grad_scale in host-visible memory, the rest on the device.
struct Tensors {
  Arena arena{ctx(), "cross_entropy"};
  Arena host{ctx(), "cross_entropy.host", MemoryKind::host};
  Tensor logits, targets, mask, grad_scale, loss, scratch;

  Tensors(int64_t rows, int64_t V, DType dtype)
      : logits(arena.alloc(dtype, {rows, V})),
        targets(arena.alloc(DType::i32, {rows})),
        mask(arena.alloc(DType::f32, {rows})),
        grad_scale(host.alloc(DType::f32, {1})),
        loss(arena.alloc(DType::f32, {1})),
        scratch(arena.alloc(DType::f32, {ops::cross_entropy_scratch_elems(rows)})) {}

  void record(Program& p) const { ops::cross_entropy(p, logits, targets, mask, grad_scale, loss, scratch); }
  void write(const Inputs& in) const {
    test::write_values(logits, in.logits);
    ctx().write(targets, in.targets);
    ctx().write(mask, in.mask);
  }
  // Writes the logits again (they are overwritten in place), poisons the outputs and runs p.
  void run(Program& p, const Inputs& in) const {
    test::write_values(logits, in.logits);
    test::poison(loss);
    test::poison(scratch);
    ctx().wait(ctx().submit(p));
  }
  ref::Vec grad() const { return test::read_values(logits); }
  float loss_value() const { return ctx().read<float>(loss)[0]; }
};

// 16-bit gradients are rounded once on store: f16 keeps 11 significant bits, bf16 8 (up to 2^-9 relative per
// element), so bf16's bound is three times f16's.
double tolerance(DType t) { return t == DType::bf16 ? 1.5e-2 : t == DType::f16 ? 5e-3 : 1e-5; }

class CrossEntropyTest : public testing::TestWithParam<std::tuple<DType, int64_t, int64_t>> {};

TEST_P(CrossEntropyTest, LossAndGradient) {
  const auto [dtype, rows, V] = GetParam();
  if (!ops::has_storage(ctx(), dtype)) GTEST_SKIP() << "no " << dtype_name(dtype) << " support";
  // f16 gradients need loss scaling to stay above f16's subnormals; bf16 has fp32's range and needs none.
  const float grad_scale = dtype == DType::f16 ? 256.0f : 0.75f;
  const Inputs in = make_inputs(rows, V, dtype, uint32_t(rows * 131 + V));
  Tensors t(rows, V, dtype);
  t.write(in);
  set_mapped(t.grad_scale, grad_scale);
  Program p(ctx(), "cross_entropy");
  t.record(p);

  test::run_twice_bytes({t.logits, t.loss}, {}, [&] { t.run(p, in); });  // the gradient (in logits) and the loss

  const Want want = reference(in, V, grad_scale);
  const ref::Vec got = t.grad();
  // The loss is fp32 arithmetic on exactly stored logits in every variant.
  EXPECT_LE(test::rel_l2({t.loss_value()}, {want.loss}), 1e-5) << "loss " << t.loss_value() << ", want " << want.loss;
  EXPECT_LE(test::rel_l2(got, want.grad), tolerance(dtype));
  for (int64_t r = 0; r < rows; ++r) {
    bool ignored = in.mask[r] == 0 || in.targets[r] < 0 || in.targets[r] >= V;
    for (int64_t i = 0; ignored && i < V; ++i)
      ASSERT_EQ(got[r * V + i], 0.0) << "row " << r << " is masked or ignored, yet element " << i << " is not 0";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyTest,
                         testing::Combine(testing::Values(DType::f32, DType::f16, DType::bf16),
                                          testing::Values(1, 7, 33, 257),
                                          testing::Values(1, 7, 257, 6400, 6401)),
                         [](const auto& info) {
                           return std::string(dtype_name(std::get<0>(info.param))) + "_rows" +
                                  std::to_string(std::get<1>(info.param)) + "_V" +
                                  std::to_string(std::get<2>(info.param));
                         });

// The reference gradient is the derivative of the reference loss: central differences over every logit of
// small cases, and over a sample (every target, then random ones) of a full-vocabulary one.
TEST(CrossEntropyReference, GradientMatchesFiniteDifferences) {
  const double h = 1e-5;
  for (auto [rows, V, sampled] : {std::tuple{7, 7, false}, std::tuple{9, 257, false}, std::tuple{7, 6400, true}}) {
    SCOPED_TRACE(testing::Message() << rows << " rows, V " << V);
    Inputs in = make_inputs(rows, V, DType::f32, 99);
    const ref::Vec mask = test::to_double(in.mask);
    const ref::Vec grad = ref::cross_entropy_grad(in.logits, in.targets, mask, V, 1.0);
    std::vector<int64_t> at;
    if (!sampled) {
      for (int64_t i = 0; i < rows * V; ++i) at.push_back(i);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        if (in.targets[r] >= 0 && in.targets[r] < V) at.push_back(r * V + in.targets[r]);
      std::mt19937 rng(5);
      for (int k = 0; k < 200; ++k) at.push_back(int64_t(rng() % uint32_t(rows * V)));
    }
    ref::Vec numeric, analytic;
    for (int64_t i : at) {
      ref::Vec x = in.logits;
      x[i] += h;
      double up = ref::cross_entropy_loss(x, in.targets, mask, V);
      x[i] -= 2 * h;
      double down = ref::cross_entropy_loss(x, in.targets, mask, V);
      numeric.push_back((up - down) / (2 * h));
      analytic.push_back(grad[i]);
    }
    EXPECT_LE(test::rel_l2(analytic, numeric), 1e-6);
  }
}

// grad_scale is read on the device: one recorded program, three scales written through mapped memory.
TEST(CrossEntropyScale, ChangedBetweenSubmissions) {
  const int64_t rows = 33, V = 257;
  const Inputs in = make_inputs(rows, V, DType::f32, 3);
  Tensors t(rows, V, DType::f32);
  t.write(in);
  Program p(ctx(), "cross_entropy");
  t.record(p);
  std::vector<uint32_t> loss_bits;
  for (float scale : {1.0f, 0.125f, 3.0f}) {
    SCOPED_TRACE(testing::Message() << "grad_scale " << scale);
    set_mapped(t.grad_scale, scale);
    t.run(p, in);
    const Want want = reference(in, V, scale);
    EXPECT_LE(test::rel_l2(t.grad(), want.grad), 1e-5);
    loss_bits.push_back(ctx().read<uint32_t>(t.loss)[0]);
  }
  EXPECT_EQ(loss_bits[0], loss_bits[1]);
  EXPECT_EQ(loss_bits[0], loss_bits[2]);
}

// When no row counts, loss and gradients are 0 (not 0/0).
TEST(CrossEntropyMask, NothingCounts) {
  const int64_t rows = 7, V = 33;
  Inputs in = make_inputs(rows, V, DType::f32, 4);
  for (int64_t r = 0; r < rows; ++r) in.mask[r] = r % 2 ? 0.0f : 1.0f;
  for (int64_t r = 0; r < rows; r += 2) in.targets[r] = r % 4 ? -1 : int32_t(V + r);
  Tensors t(rows, V, DType::f32);
  t.write(in);
  set_mapped(t.grad_scale, 1.0f);
  test::run([&](Program& p) { t.record(p); });
  EXPECT_EQ(t.loss_value(), 0.0f);
  for (double g : t.grad()) ASSERT_EQ(g, 0.0);
}

// Views at unaligned offsets everywhere, and logits [B, T, V] with targets and mask [B, T].
TEST(CrossEntropyViews, UnalignedViewsAndLeadingDims) {
  const int64_t B = 2, T = 5, V = 37, rows = B * T;
  const Inputs in = make_inputs(rows, V, DType::f32, 6);
  Arena arena(ctx(), "cross_entropy"), host(ctx(), "cross_entropy.host", MemoryKind::host);
  Tensor logits = arena.alloc(DType::f32, {rows * V + 3}).view(3, {B, T, V});
  Tensor targets = arena.alloc(DType::i32, {rows + 1}).view(1, {B, T});
  Tensor mask = arena.alloc(DType::f32, {rows + 2}).view(2, {B, T});
  Tensor scale = host.alloc(DType::f32, {3}).view(1, {1});
  Tensor loss = arena.alloc(DType::f32, {2}).view(1, {1});
  Tensor scratch = arena.alloc(DType::f32, {ops::cross_entropy_scratch_elems(rows) + 5}).view(5, {rows + 1});
  test::write_values(logits, in.logits);
  ctx().write(targets, in.targets);
  ctx().write(mask, in.mask);
  set_mapped(scale, 2.0f);
  test::poison(loss);
  test::poison(scratch);
  test::run([&](Program& p) { ops::cross_entropy(p, logits, targets, mask, scale, loss, scratch); });
  const Want want = reference(in, V, 2.0);
  EXPECT_LE(test::rel_l2({ctx().read<float>(loss)[0]}, {want.loss}), 1e-5);
  EXPECT_LE(test::rel_l2(test::to_double(ctx().read<float>(logits)), want.grad), 1e-5);
}

// Logits over maxStorageBufferRange (128 MiB on lavapipe) run in pieces of whole rows.
TEST(CrossEntropyLarge, LogitsInPieces) {
  const uint64_t range = ctx().info().max_storage_buffer_range;
  if (range > (256ull << 20)) GTEST_SKIP() << "a storage binding of " << range << " bytes is too large to exceed here";
  const int64_t V = 6400, rows = int64_t(range / 4) / V + 7;
  const Inputs in = make_inputs(rows, V, DType::f32, 8);
  Tensors t(rows, V, DType::f32);
  t.write(in);
  set_mapped(t.grad_scale, 1.0f);
  Program p(ctx(), "cross_entropy");
  t.record(p);
  t.run(p, in);
  const Want want = reference(in, V, 1.0);
  EXPECT_LE(test::rel_l2({t.loss_value()}, {want.loss}), 1e-5);
  EXPECT_LE(test::rel_l2(t.grad(), want.grad), 1e-5);
}

TEST(CrossEntropyErrors, RejectsBadTensors) {
  const int64_t rows = 4, V = 10;
  Arena arena(ctx(), "errors");
  Tensor logits = arena.alloc(DType::f32, {rows, V}), targets = arena.alloc(DType::i32, {rows});
  Tensor mask = arena.alloc(DType::f32, {rows}), scale = arena.alloc(DType::f32, {1});
  Tensor loss = arena.alloc(DType::f32, {1}), scratch = arena.alloc(DType::f32, {ops::cross_entropy_scratch_elems(rows)});
  Program p(ctx(), "errors");
  auto call = [&](const Tensor& l, const Tensor& t, const Tensor& m, const Tensor& s, const Tensor& o,
                  const Tensor& w) { ops::cross_entropy(p, l, t, m, s, o, w); };
  EXPECT_THROW(call(logits.as(DType::i32), targets, mask, scale, loss, scratch), Error);      // int logits
  EXPECT_THROW(call(logits, targets.as(DType::f32), mask, scale, loss, scratch), Error);      // float targets
  EXPECT_THROW(call(logits, targets, scratch.view(0, {rows - 1}), scale, loss, scratch), Error);  // short mask
  EXPECT_THROW(call(logits, targets, mask, scratch.view(0, {2}), loss, scratch), Error);     // two scales
  EXPECT_THROW(call(logits, targets, mask, scale, loss, scratch.view(0, {rows})), Error);    // scratch too small
  EXPECT_THROW(call(logits, targets, mask, scale, scratch.view(0, {1}), scratch), Error);    // loss in scratch
  EXPECT_THROW(call(logits, targets, mask, scale, logits.flat().view(0, {1}), scratch), Error);  // loss in logits
  EXPECT_THROW(call(logits.flat(), targets, mask, scale, loss, scratch), Error);             // no rows dim
}

}  // namespace
}  // namespace vkm
