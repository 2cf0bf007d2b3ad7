// Arenas, tensor views and host transfers, including a tensor larger than maxStorageBufferRange.
#include "engine/memory.hpp"

#include "engine/error.hpp"
#include "engine/ops/fill.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using test::ctx;

TEST(Arena, TensorsAreAlignedAndDisjoint) {
  Arena arena(ctx(), "align", MemoryKind::device, 1 << 20);
  std::vector<Tensor> ts;
  for (int64_t n : {1, 7, 33, 257, 64})
    ts.push_back(arena.alloc(n % 2 ? DType::f16 : DType::f32, {n}));
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i].offset % ctx().info().min_storage_offset_alignment, 0u);
    for (size_t j = 0; j < i; ++j) EXPECT_FALSE(ts[i].overlaps(ts[j]));
  }
  EXPECT_EQ(arena.capacity(), uint64_t(1 << 20));
  Tensor big = arena.alloc(DType::f32, {1 << 19});  // 2 MiB: a block of its own
  EXPECT_GE(arena.capacity(), uint64_t(3 << 20));
  EXPECT_NE(big.buffer, ts[0].buffer);
  arena.reset();
  EXPECT_EQ(arena.used(), 0u);
}

TEST(Tensor, ViewsAndReshapesAreChecked) {
  Arena arena(ctx(), "views");
  Tensor t = arena.alloc(DType::f32, {4, 6});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.bytes(), 96u);
  EXPECT_EQ(t.dim(-1), 6);
  Tensor row = t.view(6, {6});
  EXPECT_EQ(row.offset, t.offset + 24);
  EXPECT_TRUE(row.overlaps(t));
  EXPECT_FALSE(row.overlaps(t.view(12, {6})));
  EXPECT_EQ(t.reshape({24}).numel(), 24);
  EXPECT_THROW(t.view(20, {6}), Error);
  EXPECT_THROW(t.reshape({5, 5}), Error);
  EXPECT_THROW(t.as(DType::f16), Error);
  EXPECT_EQ(t.as(DType::i32).dtype, DType::i32);
}

TEST(Transfer, RoundTripAndSizeChecks) {
  Arena dev(ctx(), "dev");
  Arena host(ctx(), "host", MemoryKind::host, 1 << 20);
  for (Arena* a : {&dev, &host}) {
    Tensor t = a->alloc(DType::f32, {12345});
    auto v = test::random_floats(12345, 7);
    ctx().write(t, v);
    EXPECT_EQ(ctx().read<float>(t), v);
    std::vector<float> wrong(100);
    EXPECT_THROW(ctx().write(t, wrong), Error);
  }
}

TEST(Transfer, StagingPathInPieces) {
  // Unmapped device memory, as on a discrete GPU: transfers go through the 64 MiB staging buffer.
  ContextOptions opts;
  opts.map_device_memory = false;
  Context staged(opts);
  const int64_t n = (70 << 20) / 4 + 3;  // more than one staging piece
  Arena arena(staged, "staged", MemoryKind::device, uint64_t(n) * 4);
  Tensor t = arena.alloc(DType::f32, {n});
  ASSERT_EQ(t.buffer->mapped(), nullptr);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = float(i % 1000003) * 0.5f;
  staged.write(t, v);
  Tensor u = arena.alloc(DType::f32, {n});
  Program p(staged, "copy");
  p.copy(t, u);
  staged.wait(staged.submit(p));
  EXPECT_EQ(staged.read<float>(u), v);
}

TEST(Tensor, LargerThanMaxStorageBufferRange) {
  // A tensor the device cannot bind in one descriptor: ops split it into bindable pieces.
  const uint64_t range = ctx().info().max_storage_buffer_range;
  const int64_t n = int64_t(range / 4) + (3 << 20) + 5;  // about 12 MiB over, odd length
  Arena arena(ctx(), "big", MemoryKind::device, uint64_t(n) * 4);
  Tensor t = arena.alloc(DType::f32, {n});
  ASSERT_GT(t.bytes(), range);
  test::poison(t);
  test::run([&](Program& p) { ops::fill(p, t, 1.5); });
  auto v = ctx().read<float>(t);
  int64_t wrong = 0;
  for (float x : v) wrong += x != 1.5f;
  EXPECT_EQ(wrong, 0);

  Program p(ctx(), "whole");
  const Kernel& k = ctx().kernel({"fill.b32", 1, 8, {256}});
  uint32_t push[2] = {0, 0};
  EXPECT_THROW(p.dispatch(k, {out(t)}, push, 8, 1), Error);  // one binding cannot hold it
}

}  // namespace
}  // namespace vkm
