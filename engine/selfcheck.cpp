#include "engine/selfcheck.hpp"

#include <chrono>
#include <cmath>
#include <functional>

#include "engine/context.hpp"
#include "engine/ops/cast.hpp"
#include "engine/ops/copy.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/fill.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/reduce.hpp"
#include "engine/program.hpp"

namespace vkm {

namespace {

using Check = std::function<std::string(Context&)>;

// Thrown by a check that cannot run on this device.
struct Skipped {
  std::string why;
};

void run(Context& ctx, const std::function<void(Program&)>& record) {
  Program p(ctx, "selfcheck");
  record(p);
  ctx.wait(ctx.submit(p));
}

// "" when every |got - want| <= tol * max(1, |want|), else the first mismatch.
std::string compare(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  if (got.size() != want.size()) return "size " + std::to_string(got.size()) + " != " + std::to_string(want.size());
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol * std::max(1.0f, std::fabs(want[i]))))
      return "element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
  return "";
}

std::vector<float> ramp(size_t n, float scale = 0.01f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * float(int(i % 97) - 48) + 0.003f;
  return v;
}

std::string check_fill(Context& ctx) {
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor t = a.alloc(DType::f32, {1000});
  Tensor h = a.alloc(DType::f16, {1001});
  run(ctx, [&](Program& p) {
    ops::fill(p, t, 2.5);
    if (ops::has_16bit(ctx)) ops::fill(p, h, -1.5);
  });
  std::string e = compare(ctx.read<float>(t), std::vector<float>(1000, 2.5f), 0);
  if (e.empty() && ops::has_16bit(ctx)) {
    std::vector<float> got;
    for (uint16_t x : ctx.read<uint16_t>(h)) got.push_back(f16_to_f32(x));
    e = compare(got, std::vector<float>(1001, -1.5f), 0);
  }
  return e;
}

std::string check_elementwise(Context& ctx) {
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  const size_t n = 1000;
  std::vector<float> xv = ramp(n), yv = ramp(n, 0.07f), want_sum(n), want_scaled(n);
  for (size_t i = 0; i < n; ++i) {
    want_sum[i] = xv[i] + yv[i];
    want_scaled[i] = -1.5f * xv[i];
  }
  Tensor x = a.alloc(DType::f32, {int64_t(n)}), y = a.alloc(DType::f32, {int64_t(n)});
  Tensor sum = a.alloc(DType::f32, {int64_t(n)});
  ctx.write(x, xv);
  ctx.write(y, yv);
  run(ctx, [&](Program& p) {
    ops::add(p, x, y, sum);
    ops::scale(p, x, -1.5f, x);
  });
  std::string e = compare(ctx.read<float>(sum), want_sum, 1e-6f);
  if (!e.empty()) return "add: " + e;
  e = compare(ctx.read<float>(x), want_scaled, 1e-6f);
  return e.empty() ? "" : "scale: " + e;
}

std::string check_reduce(Context& ctx) {
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  const size_t n = 5000;  // several first-pass workgroups
  std::vector<float> xv = ramp(n);
  double sum = 0, squares = 0;
  for (float v : xv) {
    sum += v;
    squares += double(v) * v;
  }
  Tensor x = a.alloc(DType::f32, {int64_t(n)});
  Tensor got_sum = a.alloc(DType::f32, {1}), got_squares = a.alloc(DType::f32, {1});
  Tensor scratch = a.alloc(DType::f32, {ops::reduce_scratch_elems(ctx, int64_t(n))});
  ctx.write(x, xv);
  run(ctx, [&](Program& p) {
    ops::reduce(p, ops::Reduce::sum, x, got_sum, scratch);
    ops::reduce(p, ops::Reduce::sum_squares, x, got_squares, scratch);
  });
  std::string e = compare(ctx.read<float>(got_sum), {float(sum)}, 1e-5f);
  if (!e.empty()) return "sum: " + e;
  e = compare(ctx.read<float>(got_squares), {float(squares)}, 1e-5f);
  return e.empty() ? "" : "sum of squares: " + e;
}

// Every cast kernel once, around f32 -> f16 -> bf16 -> f16 -> f32 and f32 -> bf16 -> f32.
std::string check_cast(Context& ctx) {
  if (!ops::has_16bit(ctx)) throw Skipped{"every cast has a 16-bit side, and the device lacks 16-bit support"};
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  const int64_t n = 1000;
  std::vector<float> xv = ramp(n), want_ring(n), want_bf16(n);
  for (int64_t i = 0; i < n; ++i) {
    float h = f16_to_f32(f32_to_f16(xv[i]));
    want_ring[i] = f16_to_f32(f32_to_f16(bf16_to_f32(f32_to_bf16(h))));
    want_bf16[i] = bf16_to_f32(f32_to_bf16(xv[i]));
  }
  Tensor x = a.alloc(DType::f32, {n}), h = a.alloc(DType::f16, {n}), b = a.alloc(DType::bf16, {n});
  Tensor h2 = a.alloc(DType::f16, {n}), ring = a.alloc(DType::f32, {n});
  Tensor b2 = a.alloc(DType::bf16, {n}), back = a.alloc(DType::f32, {n});
  ctx.write(x, xv);
  run(ctx, [&](Program& p) {
    ops::cast(p, x, h);
    ops::cast(p, h, b);
    ops::cast(p, b, h2);
    ops::cast(p, h2, ring);
    ops::cast(p, x, b2);
    ops::cast(p, b2, back);
  });
  std::string e = compare(ctx.read<float>(ring), want_ring, 0);
  if (!e.empty()) return "through f16 and bf16: " + e;
  e = compare(ctx.read<float>(back), want_bf16, 0);
  return e.empty() ? "" : "through bf16: " + e;
}

// Copies are bitwise, so small integers show any misplaced element: a whole copy, and a 7x5 block between
// row strides 9 and 6 into a view at an unaligned offset, in 32 and (where the device has it) 16 bits.
std::string check_copy(Context& ctx) {
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  auto check = [&](DType t, auto zero) -> std::string {
    using T = decltype(zero);
    std::vector<T> xv(100), block(50, T(7777));
    for (size_t i = 0; i < xv.size(); ++i) xv[i] = T(3 * i + 1);
    std::vector<T> want = block;
    for (int r = 0; r < 7; ++r)
      for (int c = 0; c < 5; ++c) want[1 + r * 6 + c] = xv[3 + r * 9 + c];
    Tensor x = a.alloc(t, {100}), whole = a.alloc(t, {100}), tb = a.alloc(t, {50});
    ctx.write(x, xv);
    ctx.write(tb, block);
    run(ctx, [&](Program& p) {
      ops::copy(p, x, whole);
      ops::copy_2d(p, x.view(3, {97}), tb.view(1, {49}), 7, 5, 9, 6);
    });
    auto floats = [](const std::vector<T>& v) { return std::vector<float>(v.begin(), v.end()); };
    std::string e = compare(floats(ctx.read<T>(whole)), floats(xv), 0);
    if (!e.empty()) return std::string(dtype_name(t)) + " copy: " + e;
    e = compare(floats(ctx.read<T>(tb)), floats(want), 0);
    return e.empty() ? "" : std::string(dtype_name(t)) + " copy_2d: " + e;
  };
  std::string e = check(DType::u32, uint32_t());
  if (e.empty() && ops::has_16bit(ctx)) e = check(DType::f16, uint16_t());
  return e;
}

// A linear layer's three products against float loops; M spans two 64-row blocks.
std::string check_matmul(Context& ctx) {
  const int64_t M = 70, N = 23, K = 37;
  std::vector<float> x = ramp(M * K), w = ramp(N * K, 0.02f), dy = ramp(M * N, 0.03f);
  std::vector<float> y(M * N), dx(M * K), dw(N * K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        y[m * N + n] += x[m * K + k] * w[n * K + k];
        dx[m * K + k] += dy[m * N + n] * w[n * K + k];
        dw[n * K + k] += dy[m * N + n] * x[m * K + k];
      }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor X = a.alloc(DType::f32, {M, K}), W = a.alloc(DType::f32, {N, K}), dY = a.alloc(DType::f32, {M, N});
  Tensor Y = a.alloc(DType::f32, {M, N}), dX = a.alloc(DType::f32, {M, K}), dW = a.alloc(DType::f32, {N, K});
  ctx.write(X, x);
  ctx.write(W, w);
  ctx.write(dY, dy);
  run(ctx, [&](Program& p) {
    ops::linear(p, X, W, Y);
    ops::linear_backward_input(p, dY, W, dX);
    ops::linear_backward_weight(p, dY, X, dW, /*accumulate=*/false);
  });
  struct Product {
    const char* name;
    Tensor t;
    const std::vector<float>& want;
  };
  for (const Product& o : {Product{"Y = X·Wᵀ", Y, y}, Product{"dX = dY·W", dX, dx}, Product{"dW = dYᵀ·X", dW, dw}})
    if (std::string e = compare(ctx.read<float>(o.t), o.want, 1e-5f); !e.empty()) return std::string(o.name) + ": " + e;
  return "";
}

const std::vector<std::pair<const char*, Check>>& checks() {
  static const std::vector<std::pair<const char*, Check>> all = {
      {"fill", check_fill},
      {"matmul", check_matmul},
      {"cast", check_cast},
      {"copy", check_copy},
      {"elementwise", check_elementwise},
      {"reduce", check_reduce},
  };
  return all;
}

}  // namespace

std::vector<CheckResult> selfcheck(Context& ctx) {
  std::vector<CheckResult> out;
  for (auto& [name, check] : checks()) {
    auto t0 = std::chrono::steady_clock::now();
    CheckResult r;
    r.name = name;
    try {
      r.failure = check(ctx);
    } catch (const Skipped& s) {
      r.skipped = s.why;
    } catch (const std::exception& e) {
      r.failure = e.what();
    }
    r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(r);
  }
  return out;
}

}  // namespace vkm
