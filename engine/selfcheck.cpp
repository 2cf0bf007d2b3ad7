#include "engine/selfcheck.hpp"

#include <chrono>
#include <cmath>
#include <functional>

#include "engine/context.hpp"
#include "engine/ops/adamw.hpp"
#include "engine/ops/attention.hpp"
#include "engine/ops/cast.hpp"
#include "engine/ops/copy.hpp"
#include "engine/ops/cross_entropy.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/embedding.hpp"
#include "engine/ops/swiglu.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/fill.hpp"
#include "engine/ops/grad_norm.hpp"
#include "engine/ops/kv_cache.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/matvec.hpp"
#include "engine/ops/reduce.hpp"
#include "engine/ops/rmsnorm.hpp"
#include "engine/ops/rope.hpp"
#include "engine/ops/sample.hpp"
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
  if (!e.empty()) return "scale: " + e;
  // 16-bit adds: one rounding of the fp32 sum of the stored values, as here on the host.
  for (DType t : {DType::f16, DType::bf16}) {
    if (!ops::has_storage(ctx, t)) continue;
    const bool f16 = t == DType::f16;
    auto narrow = [&](float v) { return f16 ? f32_to_f16(v) : f32_to_bf16(v); };
    auto widen = [&](uint16_t h) { return f16 ? f16_to_f32(h) : bf16_to_f32(h); };
    std::vector<uint16_t> xh(n), yh(n);
    std::vector<float> want_h(n), got_h;
    for (size_t i = 0; i < n; ++i) {
      xh[i] = narrow(xv[i]);
      yh[i] = narrow(yv[i]);
      want_h[i] = widen(narrow(widen(xh[i]) + widen(yh[i])));
    }
    Tensor x16 = a.alloc(t, {int64_t(n)}), y16 = a.alloc(t, {int64_t(n)});
    ctx.write(x16, xh);
    ctx.write(y16, yh);
    run(ctx, [&](Program& p) { ops::add(p, x16, y16, x16); });
    for (uint16_t h : ctx.read<uint16_t>(x16)) got_h.push_back(widen(h));
    e = compare(got_h, want_h, 0);
    if (!e.empty()) return "add " + std::string(dtype_name(t)) + ": " + e;
  }
  return "";
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

// A linear layer's three products against float loops; M spans two 64-row blocks. Where the device has
// 16-bit support, again from f16 inputs (the loops take the same rounded values): f16 Y and dX, fp32 dW.
std::string check_matmul(Context& ctx) {
  const int64_t M = 70, N = 23, K = 37;
  for (DType in : {DType::f32, DType::f16}) {
    if (in == DType::f16 && !ops::has_16bit(ctx)) break;
    const bool half = in == DType::f16;
    auto stored = [&](std::vector<float> v) {
      if (half)
        for (float& e : v) e = f16_to_f32(f32_to_f16(e));
      return v;
    };
    std::vector<float> x = stored(ramp(M * K)), w = stored(ramp(N * K, 0.02f)), dy = stored(ramp(M * N, 0.03f));
    std::vector<float> y(M * N), dx(M * K), dw(N * K);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          y[m * N + n] += x[m * K + k] * w[n * K + k];
          dx[m * K + k] += dy[m * N + n] * w[n * K + k];
          dw[n * K + k] += dy[m * N + n] * x[m * K + k];
        }
    Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
    Tensor X = a.alloc(in, {M, K}), W = a.alloc(in, {N, K}), dY = a.alloc(in, {M, N});
    Tensor Y = a.alloc(in, {M, N}), dX = a.alloc(in, {M, K}), dW = a.alloc(DType::f32, {N, K});
    for (auto [t, v] : {std::pair{X, &x}, std::pair{W, &w}, std::pair{dY, &dy}}) {
      if (!half) {
        ctx.write(t, *v);
        continue;
      }
      std::vector<uint16_t> h;
      for (float e : *v) h.push_back(f32_to_f16(e));
      ctx.write(t, h);
    }
    run(ctx, [&](Program& p) {
      ops::linear(p, X, W, Y);
      ops::linear_backward_input(p, dY, W, dX);
      ops::linear_backward_weight(p, dY, X, dW, /*accumulate=*/false);
    });
    auto floats = [&](const Tensor& t) {
      if (t.dtype == DType::f32) return ctx.read<float>(t);
      std::vector<float> v;
      for (uint16_t h : ctx.read<uint16_t>(t)) v.push_back(f16_to_f32(h));
      return v;
    };
    struct Product {
      const char* name;
      Tensor t;
      const std::vector<float>& want;
    };
    for (const Product& o : {Product{"Y = X·Wᵀ", Y, y}, Product{"dX = dY·W", dX, dx}, Product{"dW = dYᵀ·X", dW, dw}}) {
      const float tol = o.t.dtype == DType::f16 ? 1e-3f : 1e-5f;  // f16 outputs are off by up to 2^-11
      if (std::string e = compare(floats(o.t), o.want, tol); !e.empty())
        return std::string(dtype_name(in)) + " " + o.name + ": " + e;
    }
  }
  return "";
}

// RMSNorm forward and backward against float loops; C = 300 is more than one workgroup's width, and
// 40 rows make three blocks of dw partials.
std::string check_rmsnorm(Context& ctx) {
  const int64_t rows = 40, C = 300;
  const float eps = ops::kRmsNormEps;
  std::vector<float> x = ramp(rows * C), w = ramp(C, 0.02f), dy = ramp(rows * C, 0.03f);
  std::vector<float> y(rows * C), rstd(rows), dx(rows * C), dw(C, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float squares = 0, s = 0;
    for (int64_t c = 0; c < C; ++c) {
      squares += x[r * C + c] * x[r * C + c];
      s += dy[r * C + c] * w[c] * x[r * C + c];
    }
    const float q = 1.0f / std::sqrt(squares / float(C) + eps);
    rstd[r] = q;
    for (int64_t c = 0; c < C; ++c) {
      y[r * C + c] = x[r * C + c] * q * w[c];
      dx[r * C + c] = q * (w[c] * dy[r * C + c] - x[r * C + c] * q * q * s / float(C));
      dw[c] += dy[r * C + c] * x[r * C + c] * q;
    }
  }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor X = a.alloc(DType::f32, {rows, C}), W = a.alloc(DType::f32, {C}), dY = a.alloc(DType::f32, {rows, C});
  Tensor Y = a.alloc(DType::f32, {rows, C}), R = a.alloc(DType::f32, {rows}), dX = a.alloc(DType::f32, {rows, C});
  Tensor dW = a.alloc(DType::f32, {C}), scratch = a.alloc(DType::f32, {ops::rmsnorm_backward_scratch_elems(rows, C)});
  ctx.write(X, x);
  ctx.write(W, w);
  ctx.write(dY, dy);
  run(ctx, [&](Program& p) {
    ops::rmsnorm(p, X, W, Y, R, eps);
    ops::rmsnorm_backward(p, dY, X, W, R, dX, dW, scratch, /*accumulate=*/false);
  });
  struct Output {
    const char* name;
    Tensor t;
    const std::vector<float>& want;
  };
  for (const Output& o : {Output{"y", Y, y}, Output{"rstd", R, rstd}, Output{"dx", dX, dx}, Output{"dw", dW, dw}})
    if (std::string e = compare(ctx.read<float>(o.t), o.want, 1e-4f); !e.empty()) return std::string(o.name) + ": " + e;
  return "";
}

// RoPE forward (in place) and backward (the rotation undone) from position 2, against float loops.
std::string check_rope(Context& ctx) {
  const int64_t T = 5, H = 3, D = 8, half = D / 2, start = 2;
  const std::vector<float> table = ops::rope_table(start + T, D);
  std::vector<float> x = ramp(T * H * D), y(x.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = float(start + t) * float(std::pow(ops::kRopeTheta, -2.0 * double(i) / double(D)));
        const int64_t at = (t * H + h) * D + i;
        y[at] = x[at] * std::cos(angle) - x[at + half] * std::sin(angle);
        y[at + half] = x[at + half] * std::cos(angle) + x[at] * std::sin(angle);
      }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor X = a.alloc(DType::f32, {1, T, H, D}), back = a.alloc(DType::f32, {1, T, H, D});
  Tensor at = a.alloc(DType::f32, {1, T, H, D}), pos = a.alloc(DType::i32, {1, T});
  Tensor tab = a.alloc(DType::f32, {start + T, half, 2});
  ctx.write(X, x);
  ctx.write(tab, table);
  std::vector<int32_t> positions;
  for (int64_t t = 0; t < T; ++t) positions.push_back(int32_t(start + t));
  ctx.write(pos, positions);
  run(ctx, [&](Program& p) {
    ops::rope_at(p, X, at, tab, pos);
    ops::rope(p, X, X, tab, start);
    ops::rope_backward(p, X, back, tab, start);
  });
  if (std::string e = compare(ctx.read<float>(X), y, 1e-5f); !e.empty()) return "rope: " + e;
  if (std::string e = compare(ctx.read<float>(at), y, 1e-5f); !e.empty()) return "rope_at: " + e;
  std::string e = compare(ctx.read<float>(back), x, 1e-5f);
  return e.empty() ? "" : "rope_backward of rope: " + e;
}

// Lookup and its gradient with repeated ids (and one out of range), against float loops in position order.
std::string check_embedding(Context& ctx) {
  const int64_t V = 11, C = 37, N = 50;
  std::vector<float> table = ramp(V * C), dout = ramp(N * C, 0.03f), initial = ramp(V * C, 0.05f);
  std::vector<int32_t> ids(N);
  for (int64_t r = 0; r < N; ++r) ids[r] = r == 7 ? -1 : int32_t(r * r % V);
  std::vector<float> want_out(N * C, 0.0f), sums(V * C, 0.0f), want_dtable = initial;
  for (int64_t r = 0; r < N; ++r)
    if (ids[r] >= 0)
      for (int64_t c = 0; c < C; ++c) {
        want_out[r * C + c] = table[ids[r] * C + c];
        sums[ids[r] * C + c] += dout[r * C + c];
      }
  for (int64_t i = 0; i < V * C; ++i) want_dtable[i] += sums[i];
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor T = a.alloc(DType::f32, {V, C}), I = a.alloc(DType::i32, {N}), O = a.alloc(DType::f32, {N, C});
  Tensor dO = a.alloc(DType::f32, {N, C}), dT = a.alloc(DType::f32, {V, C});
  ctx.write(T, table);
  ctx.write(I, ids);
  ctx.write(dO, dout);
  ctx.write(dT, initial);
  run(ctx, [&](Program& p) {
    ops::embedding(p, T, I, O);
    ops::embedding_backward(p, I, dO, dT);
  });
  std::string e = compare(ctx.read<float>(O), want_out, 0);
  if (!e.empty()) return "forward: " + e;
  e = compare(ctx.read<float>(dT), want_dtable, 1e-5f);
  return e.empty() ? "" : "backward: " + e;
}

// h = silu(gate) * up and its two gradients, against float loops.
std::string check_swiglu(Context& ctx) {
  const int64_t n = 3 * 100;
  std::vector<float> g = ramp(n, 0.1f), u = ramp(n, 0.02f), dh = ramp(n, 0.03f), h(n), dg(n), du(n);
  for (int64_t i = 0; i < n; ++i) {
    float s = 1.0f / (1.0f + std::exp(-g[i]));
    h[i] = g[i] * s * u[i];
    dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    du[i] = dh[i] * g[i] * s;
  }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  auto tensor = [&](const std::vector<float>& v) {
    Tensor t = a.alloc(DType::f32, {3, n / 3});
    if (!v.empty()) ctx.write(t, v);
    return t;
  };
  Tensor G = tensor(g), U = tensor(u), dH = tensor(dh), H = tensor({}), dG = tensor({}), dU = tensor({});
  run(ctx, [&](Program& p) {
    ops::swiglu(p, G, U, H);
    ops::swiglu_backward(p, G, U, dH, dG, dU);
  });
  for (auto [name, t, want] : {std::tuple{"h", H, &h}, std::tuple{"dgate", dG, &dg}, std::tuple{"dup", dU, &du}})
    if (std::string e = compare(ctx.read<float>(t), *want, 1e-5f); !e.empty()) return std::string(name) + ": " + e;
  return "";
}

// Three rows of 300 logits (one masked) against a float loop: the loss and the gradient written over them.
std::string check_cross_entropy(Context& ctx) {
  const int64_t rows = 3, V = 300;
  const std::vector<int32_t> targets = {5, 299, 0};
  const std::vector<float> mask = {1, 0, 1};
  std::vector<float> x = ramp(rows * V, 0.05f), grad(rows * V, 0.0f);
  float loss = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (mask[r] == 0) continue;
    const float* row = &x[r * V];
    float m = *std::max_element(row, row + V), s = 0;
    for (int64_t i = 0; i < V; ++i) s += std::exp(row[i] - m);
    loss += (m + std::log(s) - row[targets[r]]) / 2;
    for (int64_t i = 0; i < V; ++i) grad[r * V + i] = (std::exp(row[i] - m) / s - (i == targets[r])) / 2;
  }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor X = a.alloc(DType::f32, {rows, V}), T = a.alloc(DType::i32, {rows}), M = a.alloc(DType::f32, {rows});
  Tensor scale = a.alloc(DType::f32, {1}), L = a.alloc(DType::f32, {1});
  Tensor scratch = a.alloc(DType::f32, {ops::cross_entropy_scratch_elems(rows)});
  ctx.write(X, x);
  ctx.write(T, targets);
  ctx.write(M, mask);
  ctx.write(scale, std::vector<float>{1.0f});
  run(ctx, [&](Program& p) { ops::cross_entropy(p, X, T, M, scale, L, scratch); });
  std::string e = compare(ctx.read<float>(L), {loss}, 1e-5f);
  if (!e.empty()) return "loss: " + e;
  e = compare(ctx.read<float>(X), grad, 1e-5f);
  return e.empty() ? "" : "dlogits: " + e;
}

// The norm of 5000 gradients, and the clip factor for half of it.
std::string check_grad_norm(Context& ctx) {
  const int64_t n = 5000;
  std::vector<float> g = ramp(n);
  double squares = 0;
  for (float v : g) squares += double(v) * v;
  const float norm = float(std::sqrt(squares));
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor G = a.alloc(DType::f32, {n}), stats = a.alloc(DType::f32, {ops::kGradStatsElems});
  Tensor scratch = a.alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx, n)});
  ctx.write(G, g);
  run(ctx, [&](Program& p) { ops::grad_norm(p, G, norm / 2, stats, scratch); });
  return compare(ctx.read<float>(stats), {norm, norm / 2 / (norm + 1e-6f), 0.0f}, 1e-5f);
}

// A first AdamW step of 1000 parameters with the gradient clipped by half, against a float loop.
std::string check_adamw(Context& ctx) {
  const int64_t n = 1000;
  const ops::AdamWConfig c;
  const float lr = 0.01f, clip = 0.5f;
  std::vector<float> p = ramp(n), g = ramp(n, 0.02f), m(n), v(n);
  for (int64_t i = 0; i < n; ++i) {
    float gi = g[i] * clip;
    m[i] = (1 - c.beta1) * gi;
    v[i] = (1 - c.beta2) * gi * gi;
    float denom = std::sqrt(v[i]) / std::sqrt(1 - c.beta2) + c.eps;
    p[i] = p[i] * (1 - lr * c.weight_decay) - lr / (1 - c.beta1) * m[i] / denom;
  }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20), host(ctx, "selfcheck.host", MemoryKind::host, 1 << 16);
  Tensor P = a.alloc(DType::f32, {n}), G = a.alloc(DType::f32, {n}), M = a.alloc(DType::f32, {n});
  Tensor V = a.alloc(DType::f32, {n}), stats = a.alloc(DType::f32, {ops::kGradStatsElems});
  Tensor step = host.alloc(DType::u32, {ops::kAdamWStepElems});
  ctx.write(P, ramp(n));
  ctx.write(G, g);
  ctx.write(M, std::vector<float>(n, 0.0f));
  ctx.write(V, std::vector<float>(n, 0.0f));
  ctx.write(stats, std::vector<float>{1.0f, clip, 0.0f});
  ops::write_adamw_step(step, {lr, 1});
  run(ctx, [&](Program& pr) { ops::adamw(pr, c, P, G, M, V, step, stats); });
  for (auto [name, t, want] : {std::tuple{"params", P, &p}, std::tuple{"m", M, &m}, std::tuple{"v", V, &v}})
    if (std::string e = compare(ctx.read<float>(t), *want, 1e-5f); !e.empty()) return std::string(name) + ": " + e;
  return "";
}

// Causal attention of 2 query heads sharing one kv head over 5 positions, forward and backward, against
// float loops that store each row's softmax.
std::string check_attention(Context& ctx) {
  constexpr int64_t T = 5, H = 2, D = 4;
  const float scale = 1.0f / std::sqrt(float(D));
  const std::vector<float> q = ramp(T * H * D, 0.05f), k = ramp(T * D, 0.07f), v = ramp(T * D, 0.03f),
                           dout = ramp(T * H * D, 0.02f);
  std::vector<float> out(T * H * D), lse(H * T), dq(T * H * D), dk(T * D), dv(T * D);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      const float* qi = &q[(i * H + h) * D];
      const float* doi = &dout[(i * H + h) * D];
      float p[T], dp[T], sum = 0, delta = 0;
      for (int64_t j = 0; j <= i; ++j) {
        float s = 0;
        for (int64_t d = 0; d < D; ++d) s += qi[d] * k[j * D + d];
        sum += p[j] = std::exp(scale * s);
      }
      lse[h * T + i] = std::log(sum);
      for (int64_t j = 0; j <= i; ++j) {
        p[j] /= sum;
        dp[j] = 0;
        for (int64_t d = 0; d < D; ++d) {
          out[(i * H + h) * D + d] += p[j] * v[j * D + d];
          dp[j] += doi[d] * v[j * D + d];
        }
        delta += p[j] * dp[j];
      }
      for (int64_t j = 0; j <= i; ++j) {
        const float ds = scale * p[j] * (dp[j] - delta);
        for (int64_t d = 0; d < D; ++d) {
          dq[(i * H + h) * D + d] += ds * k[j * D + d];
          dk[j * D + d] += ds * qi[d];
          dv[j * D + d] += p[j] * doi[d];
        }
      }
    }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  auto f32 = [&](Shape s) { return a.alloc(DType::f32, std::move(s)); };
  Tensor Q = f32({1, T, H, D}), K = f32({1, T, 1, D}), V = f32({1, T, 1, D}), dOut = f32({1, T, H, D});
  Tensor Out = f32({1, T, H, D}), Lse = f32({1, H, T}), dQ = f32({1, T, H, D}), dK = f32({1, T, 1, D}),
         dV = f32({1, T, 1, D}), scratch = f32({ops::attention_backward_scratch_elems(Q)});
  ctx.write(Q, q);
  ctx.write(K, k);
  ctx.write(V, v);
  ctx.write(dOut, dout);
  run(ctx, [&](Program& pr) {
    ops::attention(pr, Q, K, V, Out, Lse);
    ops::attention_backward(pr, Q, K, V, Out, Lse, dOut, dQ, dK, dV, scratch);
  });
  for (auto [name, t, want] : {std::tuple{"out", Out, &out}, std::tuple{"lse", Lse, &lse}, std::tuple{"dq", dQ, &dq},
                               std::tuple{"dk", dK, &dk}, std::tuple{"dv", dV, &dv}})
    if (std::string e = compare(ctx.read<float>(t), *want, 1e-5f); !e.empty()) return std::string(name) + ": " + e;
  return "";
}

// A few rows through matvec (the decoding linear layer), against a float loop.
std::string check_matvec(Context& ctx) {
  const int64_t M = 3, N = 37, K = 20;
  const std::vector<float> x = ramp(M * K), w = ramp(N * K, 0.02f);
  std::vector<float> y(M * N, 0.0f);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) y[i * N + j] += x[i * K + k] * w[j * K + k];
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor X = a.alloc(DType::f32, {M, K}), W = a.alloc(DType::f32, {N, K}), Y = a.alloc(DType::f32, {M, N});
  ctx.write(X, x);
  ctx.write(W, w);
  run(ctx, [&](Program& p) { ops::matvec(p, X, W, Y); });
  return compare(ctx.read<float>(Y), y, 1e-5f);
}

// Keys and values appended at positions 0..S-1, then a zero query: equal scores, so each output is the mean of
// the values the causal bound lets it see.
std::string check_kv_cache(Context& ctx) {
  const int64_t S = 6, H = 2, D = 4;
  const std::vector<float> k = ramp(S * H * D), v = ramp(S * H * D, 0.05f);
  std::vector<int32_t> positions;
  for (int64_t t = 0; t < S; ++t) positions.push_back(int32_t(t));
  std::vector<float> want(S * H * D, 0.0f);
  for (int64_t t = 0; t < S; ++t)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) {
        for (int64_t s = 0; s <= t; ++s) want[(t * H + h) * D + d] += v[(s * H + h) * D + d];
        want[(t * H + h) * D + d] /= float(t + 1);
      }
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor K = a.alloc(DType::f32, {1, S, H, D}), V = a.alloc(DType::f32, {1, S, H, D});
  Tensor Kc = a.alloc(DType::f32, {1, S, H, D}), Vc = a.alloc(DType::f32, {1, S, H, D});
  Tensor Q = a.alloc(DType::f32, {1, S, H, D}), Out = a.alloc(DType::f32, {1, S, H, D});
  Tensor pos = a.alloc(DType::i32, {1, S}), scratch = a.alloc(DType::f32, {ops::kv_attention_scratch_elems(Q, S)});
  ctx.write(K, k);
  ctx.write(V, v);
  ctx.write(Q, std::vector<float>(S * H * D, 0.0f));
  ctx.write(pos, positions);
  run(ctx, [&](Program& p) {
    ops::kv_append(p, K, V, Kc, Vc, pos);
    ops::kv_attention(p, Q, Kc, Vc, pos, Out, scratch);
  });
  if (std::string e = compare(ctx.read<float>(Kc), k, 0); !e.empty()) return "kv_append: " + e;
  std::string e = compare(ctx.read<float>(Out), want, 1e-5f);
  return e.empty() ? "" : "kv_attention: " + e;
}

// Greedy sampling of two sequences: the most likely token, written, and the position advanced.
std::string check_sample(Context& ctx) {
  const int64_t B = 2, V = 300;
  std::vector<float> logits = ramp(B * V);
  logits[17] = 3.0f, logits[V + 250] = 2.0f;
  Arena a(ctx, "selfcheck", MemoryKind::device, 1 << 20);
  Tensor L = a.alloc(DType::f32, {B, V}), seen = a.alloc(DType::u32, {B, ops::sample_seen_words(V)});
  Tensor seeds = a.alloc(DType::u32, {B}), pos = a.alloc(DType::i32, {B}), tokens = a.alloc(DType::i32, {B});
  ctx.write(L, logits);
  ctx.write(seen, std::vector<uint32_t>(size_t(B * ops::sample_seen_words(V)), 0));
  ctx.write(seeds, std::vector<uint32_t>{1, 2});
  ctx.write(pos, std::vector<int32_t>{4, 9});
  run(ctx, [&](Program& p) { ops::sample(p, L, {.temperature = 0.0f}, seen, seeds, pos, tokens); });
  const auto got = ctx.read<int32_t>(tokens), at = ctx.read<int32_t>(pos);
  if (got != std::vector<int32_t>{17, 250})
    return "tokens " + std::to_string(got[0]) + ", " + std::to_string(got[1]) + ", want 17, 250";
  return at == std::vector<int32_t>{5, 10} ? "" : "positions not advanced by one";
}

const std::vector<std::pair<const char*, Check>>& checks() {
  static const std::vector<std::pair<const char*, Check>> all = {
      {"fill", check_fill},
      {"matmul", check_matmul},
      {"attention", check_attention},
      {"cast", check_cast},
      {"copy", check_copy},
      {"elementwise", check_elementwise},
      {"embedding", check_embedding},
      {"swiglu", check_swiglu},
      {"reduce", check_reduce},
      {"rmsnorm", check_rmsnorm},
      {"rope", check_rope},
      {"cross_entropy", check_cross_entropy},
      {"grad_norm", check_grad_norm},
      {"adamw", check_adamw},
      {"matvec", check_matvec},
      {"kv_cache", check_kv_cache},
      {"sample", check_sample},
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
