#include "engine/ops/rope.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/ops/common.hpp"

namespace vkm::ops {

namespace {

void check_table_args(int64_t positions, int64_t head_dim, double theta, const std::optional<RopeYarn>& yarn) {
  if (positions < 0 || head_dim < 2 || head_dim % 2 || !(theta > 1))
    throw Error("rope_table: want positions >= 0, an even head_dim >= 2 and theta > 1, given " +
                std::to_string(positions) + ", " + std::to_string(head_dim) + ", " + std::to_string(theta));
  if (yarn && !(yarn->factor >= 1 && yarn->original_max_position > 0 && yarn->beta_fast > yarn->beta_slow &&
                yarn->beta_slow > 0 && yarn->attention_factor.value_or(1) > 0))
    throw Error(
        "rope_table: YaRN wants factor >= 1, original_max_position > 0, beta_fast > beta_slow > 0 and a "
        "positive attention factor");
}

// y = R x (rope, rope_at) or y = Rᵀ x (rope_backward, `transpose`); error messages say x and y as the caller
// does. With `positions` (rope_at), start_pos is unused and each token's position is read on the device.
void apply(Program& p, const char* op, const char* x_name, const Tensor& x, const char* y_name, const Tensor& y,
           const Tensor& table, int64_t start_pos, bool transpose, const Tensor& positions = {}) {
  const std::string what = std::string(op) + " (" + x_name + " " + x.describe() + ", " + y_name + " " + y.describe() +
                           ", table " + table.describe() +
                           (positions ? ", positions " + positions.describe() : ", start_pos " + std::to_string(start_pos)) +
                           ")";
  if (!x || !y || !table) throw Error(what + ": a tensor is not allocated");
  if (x.rank() != 4 || x.numel() == 0 || x.dim(3) % 2)
    throw Error(what + ": " + x_name + " must be non-empty [B,T,H,D], D even");
  const int64_t T = x.dim(1), H = x.dim(2), D = x.dim(3), half = D / 2;
  if (!is_float(x.dtype) || y.dtype != x.dtype || y.shape != x.shape)
    throw Error(what + ": " + x_name + " and " + y_name + " must have one shape and one dtype, f32, f16 or bf16");
  if (table.dtype != DType::f32 || table.rank() != 3 || table.dim(1) != half || table.dim(2) != 2)
    throw Error(what + ": the table must be f32 [positions, " + std::to_string(half) + ", 2] (rope_table)");
  if (positions && (positions.dtype != DType::i32 || positions.shape != Shape{x.dim(0), T}))
    throw Error(what + ": positions must be i32 [B, T] = [" + std::to_string(x.dim(0)) + ", " + std::to_string(T) + "]");
  if (!positions && (start_pos < 0 || start_pos + T > table.dim(0)))
    throw Error(what + ": positions " + std::to_string(start_pos) + ".." + std::to_string(start_pos + T - 1) +
                " are not all in the table");
  // In place is safe (each pair is read, then written, by one invocation); a shifted overlap is not.
  if (y.overlaps(x) && y.offset != x.offset) throw Error(what + ": " + y_name + " partly overlaps " + x_name);
  if (y.overlaps(table) || y.overlaps(positions)) throw Error(what + ": " + y_name + " overlaps the table or positions");

  Context& ctx = p.context();
  require_storage(ctx, x.dtype, op);
  struct Push {
    uint32_t rows, row0, T, H, pairs, x_skip, y_skip, t_skip, transpose, positions_skip, table_rows;
  };
  const std::string variant = std::string("rope.") + (positions ? "at_" : "") + std::string(dtype_name(x.dtype));
  const Kernel& k = ctx.kernel({variant, positions ? 4u : 3u, sizeof(Push), {kGroupSize}});
  // The table from the first position used; with device positions, all of it.
  const auto [tb, t_skip] = positions ? aligned_span(ctx, table, 0, table.numel())
                                      : aligned_span(ctx, table, start_pos * half * 2, T * half * 2);
  const auto [pb, positions_skip] = positions ? aligned_span(ctx, positions, 0, positions.numel()) : std::pair{tb, 0u};
  // Pieces of whole rows, each bindable even from the aligned offset below it.
  const DeviceInfo& d = ctx.info();
  const int64_t rows = x.numel() / D, row_bytes = D * int64_t(dtype_size(x.dtype));
  const int64_t per = int64_t(d.max_storage_buffer_range - d.min_storage_offset_alignment) / row_bytes;
  if (per == 0) throw Error(what + ": one row does not fit a storage binding");
  for (int64_t r0 = 0; r0 < rows; r0 += per) {
    const int64_t n = std::min(per, rows - r0);
    const auto [xb, x_skip] = aligned_span(ctx, x, r0 * D, n * D);
    const auto [yb, y_skip] = aligned_span(ctx, y, r0 * D, n * D);
    const Push push{uint32_t(n), uint32_t(r0), uint32_t(T), uint32_t(H), uint32_t(half), x_skip, y_skip, t_skip,
                    transpose, positions_skip, uint32_t(table.dim(0))};
    std::vector<Binding> bindings{in(xb), out(yb), in(tb)};
    if (positions) bindings.push_back(in(pb));
    p.dispatch(k, std::move(bindings), push, stride_groups(n * half));
  }
}

}  // namespace

std::vector<double> rope_inv_freq(int64_t head_dim, double theta, const std::optional<RopeYarn>& yarn) {
  check_table_args(0, head_dim, theta, yarn);
  const int64_t half = head_dim / 2;
  std::vector<double> f(half);
  for (int64_t i = 0; i < half; ++i) f[i] = std::pow(theta, -2.0 * double(i) / double(head_dim));
  if (!yarn) return f;
  // The (fractional) pair whose wavelength 2π θ^(2i/D) fits `turns` times into the original context.
  auto pair_turning = [&](double turns) {
    return double(head_dim) * std::log(double(yarn->original_max_position) / (turns * 2 * std::numbers::pi)) /
           (2 * std::log(theta));
  };
  const double low = std::max(std::floor(pair_turning(yarn->beta_fast)), 0.0);
  const double high = std::min(std::ceil(pair_turning(yarn->beta_slow)), double(half - 1));
  // Pairs below `low` turn often enough in the original context to keep their frequency (extrapolation);
  // above `high` they are slowed by the factor (interpolation); in between, a linear blend.
  for (int64_t i = 0; i < half; ++i) {
    const double ramp = std::clamp((double(i) - low) / std::max(high - low, 0.001), 0.0, 1.0);
    f[i] *= 1 - ramp + ramp / yarn->factor;
  }
  return f;
}

std::vector<float> rope_table(int64_t positions, int64_t head_dim, double theta, const std::optional<RopeYarn>& yarn) {
  check_table_args(positions, head_dim, theta, yarn);
  const std::vector<double> f = rope_inv_freq(head_dim, theta, yarn);
  const double scale =
      !yarn ? 1.0 : yarn->attention_factor.value_or(yarn->factor > 1 ? 0.1 * std::log(yarn->factor) + 1 : 1);
  const int64_t half = head_dim / 2;
  std::vector<float> table(positions * half * 2);
  for (int64_t pos = 0; pos < positions; ++pos)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(pos) * f[i];
      table[(pos * half + i) * 2] = float(scale * std::cos(angle));
      table[(pos * half + i) * 2 + 1] = float(scale * std::sin(angle));
    }
  return table;
}

void rope(Program& p, const Tensor& x, const Tensor& y, const Tensor& table, int64_t start_pos) {
  apply(p, "rope", "x", x, "y", y, table, start_pos, false);
}

void rope_backward(Program& p, const Tensor& dy, const Tensor& dx, const Tensor& table, int64_t start_pos) {
  apply(p, "rope_backward", "dy", dy, "dx", dx, table, start_pos, true);
}

void rope_at(Program& p, const Tensor& x, const Tensor& y, const Tensor& table, const Tensor& positions) {
  if (!positions) throw Error("rope_at: positions is not allocated");
  apply(p, "rope_at", "x", x, "y", y, table, 0, false, positions);
}

}  // namespace vkm::ops
