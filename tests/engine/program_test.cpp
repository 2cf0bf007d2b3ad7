// The recording engine: barriers only where needed, resubmission, descriptor reuse, errors, timestamps.
#include "engine/program.hpp"

#include "engine/error.hpp"
#include "engine/ops/fill.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

TEST(Program, BarrierOnlyWhereAWriteIsReadOrOverwritten) {
  Arena arena(ctx(), "barriers");
  Tensor a = arena.alloc(DType::f32, {100});
  Tensor b = arena.alloc(DType::f32, {100});
  Tensor c = arena.alloc(DType::f32, {100});

  Program disjoint(ctx(), "disjoint");
  ops::fill(disjoint, a, 1);
  ops::fill(disjoint, b, 2);
  ops::fill(disjoint, a.view(0, {50}).reshape({50}), 3);  // overwrites a: write after write
  disjoint.finish();
  EXPECT_EQ(disjoint.barrier_count(), 1u);

  Program raw(ctx(), "read after write");
  ops::fill(raw, a, 4);
  raw.copy(a, b);  // reads a
  raw.copy(c, a.view(0, {100}));  // writes a, which the copy before read: write after read
  raw.finish();
  EXPECT_EQ(raw.barrier_count(), 2u);

  Program halves(ctx(), "halves");
  ops::fill(halves, a.view(0, {48}), 5);
  ops::fill(halves, a.view(48, {52}), 6);  // same buffer, other bytes: no barrier
  halves.finish();
  EXPECT_EQ(halves.barrier_count(), 0u);
}

TEST(Program, ChainOfDependentCommandsGivesTheRightAnswer) {
  Arena arena(ctx(), "chain");
  const int links = 24;
  std::vector<Tensor> t;
  for (int i = 0; i < links; ++i) t.push_back(arena.alloc(DType::f32, {4099}));
  for (auto& x : t) test::poison(x);
  Program p(ctx(), "chain");
  ops::fill(p, t[0], 7.25);
  for (int i = 1; i < links; ++i) p.copy(t[i - 1], t[i]);
  ctx().wait(ctx().submit(p));
  EXPECT_EQ(p.barrier_count(), size_t(links - 1));
  EXPECT_EQ(ctx().read<float>(t.back()), std::vector<float>(4099, 7.25f));
}

TEST(Program, ResubmittedProgramSeesNewInputs) {
  Arena host(ctx(), "inputs", MemoryKind::host, 1 << 20);
  Arena dev(ctx(), "outputs");
  Tensor in = host.alloc(DType::f32, {1000});
  Tensor out = dev.alloc(DType::f32, {1000});
  Program p(ctx(), "copy");
  p.copy(in, out);
  for (int round = 0; round < 4; ++round) {
    auto v = test::random_floats(1000, 100 + round);
    ctx().write(in, v);
    ctx().wait(ctx().submit(p));
    EXPECT_EQ(ctx().read<float>(out), v) << "round " << round;
  }
}

TEST(Program, BackToBackSubmissionsAreOrdered) {
  Arena arena(ctx(), "ordered");
  Tensor a = arena.alloc(DType::f32, {5000});
  Tensor b = arena.alloc(DType::f32, {5000});
  Program set(ctx(), "set");
  ops::fill(set, a, 1);
  Program move(ctx(), "move");
  move.copy(a, b);
  Program clear(ctx(), "clear");
  ops::fill(clear, a, 2);
  // No host wait in between: only the barrier at the start of each program orders them.
  for (int i = 0; i < 3; ++i) {
    ctx().submit(set);
    ctx().submit(move);
    ctx().submit(clear);
  }
  ctx().wait_idle();
  EXPECT_EQ(ctx().read<float>(b), std::vector<float>(5000, 1.0f));
  EXPECT_EQ(ctx().read<float>(a), std::vector<float>(5000, 2.0f));
}

TEST(Program, IdenticalBindingsShareOneDescriptorSet) {
  Arena arena(ctx(), "sets");
  Tensor a = arena.alloc(DType::f32, {64});
  Tensor b = arena.alloc(DType::f32, {64});
  Program p(ctx(), "sets");
  ops::fill(p, a, 1);
  ops::fill(p, a, 2);
  ops::fill(p, b, 3);
  p.finish();
  EXPECT_EQ(p.dispatch_count(), 3u);
  EXPECT_EQ(p.descriptor_set_count(), 2u);
}

TEST(Program, MisuseIsReportedClearly) {
  Arena arena(ctx(), "misuse");
  Tensor a = arena.alloc(DType::f32, {64});
  const Kernel& k = ctx().kernel({"fill.b32", 1, 8, {256}});
  Program p(ctx(), "misuse");
  uint32_t push[2] = {64, 0};
  EXPECT_THROW(p.dispatch(k, {out(a), out(a)}, push, 8, 1), Error);           // binding count
  EXPECT_THROW(p.dispatch(k, {out(a)}, push, 4, 1), Error);                   // push size
  EXPECT_THROW(p.dispatch(k, {out(a.view(1, {8}))}, push, 8, 1), Error);      // unaligned offset
  EXPECT_THROW(p.dispatch(k, {out(Tensor{})}, push, 8, 1), Error);            // unallocated
  EXPECT_THROW(p.dispatch(k, {out(a)}, push, 8, 0), Error);                   // no workgroups
  EXPECT_THROW(ctx().kernel({"no-such-shader", 1, 8, {}}), Error);
  p.dispatch(k, {out(a)}, push, 8, 1);
  p.finish();
  EXPECT_THROW(p.dispatch(k, {out(a)}, push, 8, 1), Error);  // already recorded
}

TEST(Program, TimestampsPerDispatch) {
  if (!ctx().timestamp_bits()) GTEST_SKIP() << "device has no timestamps on its compute queue";
  Arena arena(ctx(), "timing");
  Tensor a = arena.alloc(DType::f32, {1 << 16});
  Program p(ctx(), "timed", /*profile=*/true);
  ops::fill(p, a, 1);
  p.copy(a, arena.alloc(DType::f32, {1 << 16}));
  ctx().submit(p);
  auto t = p.timings();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].label, "fill.b32");
  EXPECT_EQ(t[1].label, "copy");
  for (auto& x : t) EXPECT_GE(x.ms, 0.0);
}

}  // namespace
}  // namespace vkm
