// `vkmind bench train`: training tokens/s of whole optimizer steps (the trainer's step program: forward, loss,
// backward, clipping, AdamW) on random tokens, with the model FLOPs utilization against the matmul rate in the
// training's storage, measured on the same device in the same run.
#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <random>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "engine/ops/matmul.hpp"
#include "model/config.hpp"
#include "model/params.hpp"
#include "model/train/graph.hpp"
#include "model/train/trainer.hpp"
#include "tools/bench_util.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

struct BenchTrainOptions {
  std::string preset = "minimind2-small";
  std::string config;  // a config.json instead of the preset
  int batch = 8, seq = 512, accum = 1, steps = 5;
  std::string precision = "auto";
  bool profile = false;
};

// The step's GPU time by kernel variant, largest first.
void print_profile(const std::vector<DispatchTiming>& timings) {
  std::map<std::string, std::pair<double, int>> by_op;
  double total = 0;
  for (const DispatchTiming& t : timings) {
    auto& [ms, n] = by_op[t.label];
    ms += t.ms, ++n, total += t.ms;
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [op, v] : by_op) rows.push_back({v.first, op});
  std::sort(rows.rbegin(), rows.rend());
  std::printf("GPU time by op (commands serialized for timing), %.1f ms in all:\n", total);
  for (const auto& [ms, op] : rows)
    std::printf("  %-28s %9.2f ms  %5.1f%%  (%d commands)\n", op.c_str(), ms, 100 * ms / total, by_op[op].second);
}

// FLOPs of one training token: 6 per weight of every matmul (the tied head counted as a matmul) plus causal
// attention's QKᵀ and PV, 2·2·T·C per layer forward, halved by the mask, tripled by the backward.
double flops_per_token(const model::ModelConfig& c, int seq) {
  const double C = double(c.hidden), kv = double(c.kv_heads * c.head_dim);
  const double matmul_weights = double(c.layers) * (2 * C * C + 2 * C * kv + 3 * double(c.ffn) * C) + double(c.vocab) * C;
  return 6 * matmul_weights + 3 * double(c.layers) * 2 * double(seq) * C;
}

// The device's matmul rate at a large square size in the training's storage (GFLOP/s, median of 3), as the
// MFU's denominator: f16 products take the path f16 training takes (tensor cores where chosen).
double matmul_peak(Context& ctx, DType dtype) {
  const int64_t n = 2048;
  Arena arena(ctx, "peak");
  const Tensor x = arena.alloc(dtype, {n, n}), w = arena.alloc(dtype, {n, n}), y = arena.alloc(dtype, {n, n});
  write_values(ctx, x, random_values(size_t(n * n), 1, dtype));
  write_values(ctx, w, random_values(size_t(n * n), 2, dtype));
  Program p(ctx, "peak");
  ops::linear(p, x, w, y);
  ctx.wait(ctx.submit(p));
  std::vector<double> ms;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    ctx.wait(ctx.submit(p));
    ms.push_back(since_ms(t0));
  }
  return 2.0 * double(n) * double(n) * double(n) / (median(ms) * 1e6);
}

int bench_train(const Common& common, const BenchTrainOptions& o) {
  Context ctx(ContextOptions{common.device});
  const model::ModelConfig config = o.config.empty() ? model::preset(o.preset) : model::load_config(o.config);
  const model::ParamLayout layout(config);
  train::GraphOptions go;
  go.batch = o.batch, go.seq = o.seq, go.accum = o.accum, go.profile = o.profile;
  go.activations = train::training_activations(ctx, o.precision);
  train::TrainGraph graph(ctx, layout, go);
  graph.upload(model::init_params(layout, 1));
  std::mt19937 rng(7);
  data::Batch b{o.batch, o.seq, {}, {}, std::vector<float>(size_t(o.batch) * o.seq, 1.0f), {}};
  for (int i = 0; i < o.batch * o.seq; ++i) {
    b.inputs.push_back(int32_t(rng() % uint32_t(config.vocab)));
    b.targets.push_back(int32_t(rng() % uint32_t(config.vocab)));
  }
  for (int k = 0; k < o.accum; ++k) graph.set_batch(k, b);

  std::printf("bench train: %s (%lld parameters), batch %d x %d tokens x %d micro-batches, %s, on %s\n",
              (o.config.empty() ? o.preset : o.config).c_str(), (long long)config.parameter_count(), o.batch, o.seq,
              o.accum, graph.loss_scaled() ? "fp16 mixed precision" : graph.mixed() ? "bf16 mixed precision" : "fp32", ctx.info().name.c_str());
  graph.submit_step(1e-4, 1);  // warm-up: pipelines and first-touch costs stay out
  graph.finish_step();
  std::vector<double> ms;
  for (int s = 0; s < o.steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    graph.submit_step(1e-4, uint32_t(s + 2));
    graph.finish_step();
    ms.push_back(since_ms(t0));
  }
  const double step_ms = median(ms);
  const double tokens_per_s = double(graph.tokens_per_step()) / (step_ms / 1e3);
  const double achieved = tokens_per_s * flops_per_token(config, o.seq) / 1e9;
  if (o.profile) print_profile(graph.step_timings());
  const DType dtype = go.activations;
  const double peak = matmul_peak(ctx, dtype);
  std::printf("step %.1f ms (median of %d)  %.0f tokens/s  %.1f GFLOP/s of model FLOPs\n", step_ms, o.steps,
              tokens_per_s, achieved);
  const std::string path =
      ops::choose_matmul_path(ctx.info(), dtype, dtype, ctx.allows_cooperative_matrix()).describe();
  std::printf("%s matmul 2048^3 on this device, %s: %.1f GFLOP/s  ->  MFU %.1f%%\n",
              std::string(dtype_name(dtype)).c_str(), path.c_str(), peak, 100 * achieved / peak);
  return 0;
}

}  // namespace

void add_bench_train(CLI::App& bench, const Common& common, int& exit_code) {
  auto o = std::make_shared<BenchTrainOptions>();
  CLI::App* sub = bench.add_subcommand("train", "Training tokens/s and MFU of whole optimizer steps");
  sub->add_option("--preset", o->preset, "Model shape")->capture_default_str();
  sub->add_option("--config", o->config, "A config.json for the model's shape instead of a preset");
  sub->add_option("--batch", o->batch, "Sequences per micro-batch")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seq", o->seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--accum", o->accum, "Micro-batches per step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--steps", o->steps, "Timed steps")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--precision", o->precision, "fp32, fp16, bf16 or auto (fp16 where supported)")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "bf16"}))
      ->capture_default_str();
  sub->add_flag("--profile", o->profile, "Time every command of the step and show the time by op (slower steps)");
  on_run(sub, exit_code, [&common, o] { return bench_train(common, *o); });
}

}  // namespace vkm::tools
