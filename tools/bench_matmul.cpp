// `vkmind bench matmul`: GFLOP/s of the matmul (Y = X·Wᵀ, a linear layer's forward) on the device, with f32
// or f16 storage, beside a plain C++ loop timed in the same run on the same sizes (for f16, on the same
// f16-rounded values, in float). f16 runs the tiled kernel and, where the device has them, the tensor cores.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/context.hpp"
#include "engine/dtype.hpp"
#include "engine/memory.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/program.hpp"
#include "tools/bench_util.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

struct BenchMatmulOptions {
  int repeats = 5;
  bool skip_cpu = false;
  std::string dtype = "f32";  // storage of X, W and Y: f32 or f16 (sums are fp32 either way)
};

struct Size {
  int64_t M, N, K;
  double flop() const { return 2.0 * double(M) * double(N) * double(K); }
};

// The loop a C++ programmer writes first: i-j-k, one thread, float sums. Computes every row_step-th row.
void cpu_linear(const std::vector<float>& x, const std::vector<float>& w, std::vector<float>& y, const Size& s,
                int64_t row_step) {
  for (int64_t i = 0; i < s.M; i += row_step)
    for (int64_t j = 0; j < s.N; ++j) {
      float sum = 0;
      for (int64_t k = 0; k < s.K; ++k) sum += x[i * s.K + k] * w[j * s.K + k];
      y[i * s.N + j] = sum;
    }
}


int bench_matmul(const Common& c, const BenchMatmulOptions& o) {
  Context ctx(ContextOptions{c.device});
  const DType dtype = o.dtype == "f16" ? DType::f16 : DType::f32;
  // An f16 Y is rounded to 11 significant bits: relative to the largest value, half an ulp is 2^-12 of it.
  const double tolerance = dtype == DType::f16 ? 1e-3 : 1e-4;
  const bool stamps = ctx.timestamp_bits() > 0;  // what Program profiling uses: the chosen queue's timestamps
  std::printf("matmul, %s storage and fp32 sums, Y = X·Wᵀ (X [M,K], W [N,K]) on %s\n", o.dtype.c_str(),
              ctx.info().name.c_str());
  std::printf("GPU: median of %d runs after a warm-up, %s; CPU: naive i-j-k loop, 1 thread%s\n", o.repeats,
              stamps ? "GPU timestamps" : "host clock (no timestamps on this queue)", o.skip_cpu ? ", skipped" : "");
  // The tiled kernel, and the cooperative one beside it where f16 products take it.
  const ops::MatmulChoice choice = ops::choose_matmul_path(ctx.info(), dtype, dtype, ctx.allows_cooperative_matrix());
  std::vector<ops::MatmulPath> kernels{ops::MatmulPath::tiled};
  if (choice.path == ops::MatmulPath::cooperative) kernels.push_back(ops::MatmulPath::cooperative);
  if (dtype == DType::f16) std::printf("f16 products here: %s\n", choice.describe().c_str());
  std::printf("%6s %6s %6s %6s  %10s %10s  %10s %10s  %8s  %s\n", "M", "N", "K", "kernel", "GPU ms", "GFLOP/s",
              "CPU ms", "GFLOP/s", "GPU/CPU", "max error");

  bool wrong = false;
  for (const Size& s : {Size{512, 512, 512}, Size{1024, 1024, 1024}, Size{2048, 1408, 512}}) {
    const auto x = random_values(s.M * s.K, 1, dtype), w = random_values(s.N * s.K, 2, dtype);
    Arena arena(ctx, "bench matmul");
    Tensor X = arena.alloc(dtype, {s.M, s.K}), W = arena.alloc(dtype, {s.N, s.K});
    Tensor Y = arena.alloc(dtype, {s.M, s.N});
    write_values(ctx, X, x);
    write_values(ctx, W, w);

    // Without the timed loop, the check still computes every 16th row.
    const int64_t step = o.skip_cpu ? 16 : 1;
    std::vector<float> want(s.M * s.N);
    auto t0 = std::chrono::steady_clock::now();
    cpu_linear(x, w, want, s, step);
    const double cpu_ms = since_ms(t0);

    for (ops::MatmulPath kernel : kernels) {
      Program p(ctx, "bench matmul", /*profile=*/true);
      ops::matmul(p, X, W, Y, {.trans_b = true, .path = kernel});
      ctx.wait(ctx.submit(p));  // warm-up: first-use costs stay out of the timings
      std::vector<double> runs;
      for (int r = 0; r < o.repeats; ++r) {
        auto t1 = std::chrono::steady_clock::now();
        ctx.wait(ctx.submit(p));
        runs.push_back(stamps ? p.timings().at(0).ms : since_ms(t1));
      }
      const double gpu_ms = median(runs);
      const std::vector<float> got = read_values(ctx, Y);

      double err = 0, scale = 0;  // max |got - want| over max |want|: elementwise ratios blow up near zero
      for (int64_t i = 0; i < s.M; i += step)
        for (int64_t j = 0; j < s.N; ++j) {
          err = std::max(err, double(std::fabs(got[i * s.N + j] - want[i * s.N + j])));
          scale = std::max(scale, double(std::fabs(want[i * s.N + j])));
        }
      if (std::any_of(got.begin(), got.end(), [](float v) { return !std::isfinite(v); })) err = INFINITY;
      wrong |= !(err / scale <= tolerance);

      std::printf("%6lld %6lld %6lld %6s  %10.3f %10.1f", (long long)s.M, (long long)s.N, (long long)s.K,
                  kernel == ops::MatmulPath::cooperative ? "coop" : "tiled", gpu_ms, s.flop() / (gpu_ms * 1e6));
      if (o.skip_cpu)
        std::printf("  %10s %10s  %8s", "-", "-", "-");
      else
        std::printf("  %10.1f %10.2f  %8.1f", cpu_ms, s.flop() / (cpu_ms * 1e6), cpu_ms / gpu_ms);
      std::printf("  %.1e\n", err / scale);
    }
  }
  if (wrong) std::fprintf(stderr, "bench matmul: the device's results differ from the CPU loop's\n");
  return wrong ? 1 : 0;
}

}  // namespace

void add_bench_matmul(CLI::App& bench, const Common& common, int& exit_code) {
  auto o = std::make_shared<BenchMatmulOptions>();
  CLI::App* sub = bench.add_subcommand("matmul", "matmul GFLOP/s beside a plain C++ loop");
  sub->add_option("--repeats", o->repeats, "Timed runs per shape")->check(CLI::PositiveNumber);
  sub->add_flag("--skip-cpu", o->skip_cpu, "Do not time the C++ loop");
  sub->add_option("--dtype", o->dtype, "Storage of the matrices (sums are fp32 either way)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  on_run(sub, exit_code, [&common, o] { return bench_matmul(common, *o); });
}

}  // namespace vkm::tools
