#include "engine/ops/embedding.hpp"

#include <algorithm>
#include <cstdint>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

// Vocabulary rows per backward workgroup: its per-row sums live in shared memory, kRows * kGroupSize
// floats (8 KiB, within the 16 KiB every device has). More rows per workgroup means fewer passes over
// the ids in all.
constexpr uint32_t kRows = 8;

// Positions per dispatch such that every binding of a piece fits maxStorageBufferRange, even when it
// starts at the aligned offset below the piece.
int64_t positions_per_piece(const Context& ctx, int64_t bytes_per_position) {
  const DeviceInfo& d = ctx.info();
  return int64_t(d.max_storage_buffer_range - d.min_storage_offset_alignment) / bytes_per_position;
}

// rows [..., C] whose leading dims are the ids' shape.
bool rows_of(const Tensor& rows, const Tensor& ids, int64_t cols) {
  return rows.rank() == ids.rank() + 1 && rows.dim(-1) == cols &&
         std::equal(ids.shape.begin(), ids.shape.end(), rows.shape.begin());
}

void check_table(const char* op, const char* name, const Tensor& table, const Context& ctx) {
  if (table.rank() != 2 || table.numel() == 0)
    throw Error(std::string(op) + ": " + name + " must be a non-empty [V,C] matrix, given " + table.describe());
  if (table.bytes() + ctx.info().min_storage_offset_alignment > ctx.info().max_storage_buffer_range)
    throw Error(std::string(op) + ": " + name + " " + table.describe() +
                " is larger than one storage binding (maxStorageBufferRange) may be");
}

}  // namespace

void embedding(Program& p, const Tensor& table, const Tensor& ids, const Tensor& out) {
  Context& ctx = p.context();
  check_table("embedding", "table", table, ctx);
  const int64_t V = table.dim(0), C = table.dim(1);
  auto fail = [&](const std::string& why) {
    throw Error("embedding: " + why + " (table " + table.describe() + ", ids " + ids.describe() + ", out " +
                out.describe() + ")");
  };
  if (ids.dtype != DType::i32) fail("ids must be i32");
  if (!rows_of(out, ids, C)) fail("out must be [..., C] with the ids' shape in front");
  // A 16-bit table is copied row for row, so it must be out's own type; an f32 table is rounded to out's.
  if (!is_float(out.dtype) || (table.dtype != DType::f32 && table.dtype != out.dtype))
    fail("wants table f32 with out f32, f16 or bf16, or table f16 or bf16 with out of the same type");
  if (out.overlaps(table) || out.overlaps(ids)) fail("out overlaps an input");
  require_storage(ctx, out.dtype, "embedding");
  if (ids.numel() == 0) return;

  struct Push {
    uint32_t positions, cols, vocab, table_skip, ids_skip, out_skip;
  };
  const std::string variant = "embedding.forward_" + std::string(dtype_name(table.dtype)) + "_" +
                              std::string(dtype_name(out.dtype));
  const Kernel& k = ctx.kernel({variant, 3, sizeof(Push), {kGroupSize}});
  auto [t, t_skip] = aligned_span(ctx, table, 0, table.numel());
  const int64_t n = ids.numel(), piece = positions_per_piece(ctx, std::max<int64_t>(C * dtype_size(out.dtype), 4));
  for (int64_t r0 = 0; r0 < n; r0 += piece) {
    const int64_t count = std::min(piece, n - r0);
    auto [i, i_skip] = aligned_span(ctx, ids, r0, count);
    auto [o, o_skip] = aligned_span(ctx, out, r0 * C, count * C);
    const Push push{uint32_t(count), uint32_t(C), uint32_t(V), t_skip, i_skip, o_skip};
    p.dispatch(k, {in(t), in(i), vkm::out(o)}, push, stride_groups(count * C));
  }
}

void embedding_backward(Program& p, const Tensor& ids, const Tensor& dout, const Tensor& dtable) {
  Context& ctx = p.context();
  check_table("embedding_backward", "dtable", dtable, ctx);
  const int64_t V = dtable.dim(0), C = dtable.dim(1);
  auto fail = [&](const std::string& why) {
    throw Error("embedding_backward: " + why + " (ids " + ids.describe() + ", dout " + dout.describe() +
                ", dtable " + dtable.describe() + ")");
  };
  if (ids.dtype != DType::i32) fail("ids must be i32");
  if (dtable.dtype != DType::f32) fail("dtable must be f32 (gradients accumulate there)");
  if (!is_float(dout.dtype)) fail("dout must be f32, f16 or bf16");
  if (!rows_of(dout, ids, C)) fail("dout must be [..., C] with the ids' shape in front");
  if (dtable.overlaps(ids) || dtable.overlaps(dout)) fail("dtable overlaps an input");
  require_storage(ctx, dout.dtype, "embedding_backward");
  if (ids.numel() == 0) return;
  const uint32_t row_groups = uint32_t((V + kRows - 1) / kRows);
  const uint32_t col_groups = uint32_t((C + kGroupSize - 1) / kGroupSize);
  const uint32_t* max_groups = ctx.info().max_workgroup_count;
  if (row_groups > max_groups[0] || col_groups > max_groups[1]) fail("too many rows or columns for one dispatch");

  struct Push {
    uint32_t positions, cols, vocab, ids_skip, dout_skip, dtable_skip;
  };
  const Kernel& k = ctx.kernel({"embedding.backward_" + std::string(dtype_name(dout.dtype)), 3, sizeof(Push),
                                {kGroupSize, kRows}});
  auto [t, t_skip] = aligned_span(ctx, dtable, 0, dtable.numel());
  // Pieces of positions add into dtable one after another (the program orders them), still in order.
  const int64_t n = ids.numel(), piece = positions_per_piece(ctx, std::max<int64_t>(C * dtype_size(dout.dtype), 4));
  for (int64_t r0 = 0; r0 < n; r0 += piece) {
    const int64_t count = std::min(piece, n - r0);
    auto [i, i_skip] = aligned_span(ctx, ids, r0, count);
    auto [g, g_skip] = aligned_span(ctx, dout, r0 * C, count * C);
    const Push push{uint32_t(count), uint32_t(C), uint32_t(V), i_skip, g_skip, t_skip};
    p.dispatch(k, {in(i), in(g), inout(t)}, push, row_groups, col_groups);
  }
}

void embedding_count_bad_ids(Program& p, const Tensor& ids, int64_t vocab, const Tensor& count) {
  Context& ctx = p.context();
  if (ids.dtype != DType::i32 || count.dtype != DType::u32 || count.numel() != 1 || vocab < 1 ||
      vocab > INT32_MAX || count.overlaps(ids))
    throw Error("embedding_count_bad_ids: wants i32 ids, a vocabulary of 1 to 2^31-1 rows and a separate u32 [1] "
                "count, given ids " + ids.describe() + ", vocab " + std::to_string(vocab) + ", count " +
                count.describe());
  if (ids.numel() == 0) return;
  struct Push {
    uint32_t n, vocab, ids_skip, count_skip;
  };
  const Kernel& k = ctx.kernel({"embedding.count_bad_ids", 2, sizeof(Push), {kGroupSize}});
  auto [c, c_skip] = aligned_span(ctx, count, 0, 1);
  const int64_t n = ids.numel(), piece = positions_per_piece(ctx, 4);
  for (int64_t r0 = 0; r0 < n; r0 += piece) {
    const int64_t m = std::min(piece, n - r0);
    auto [i, i_skip] = aligned_span(ctx, ids, r0, m);
    p.dispatch(k, {in(i), inout(c)}, Push{uint32_t(m), uint32_t(vocab), i_skip, c_skip}, stride_groups(m));
  }
}

}  // namespace vkm::ops
