// `vkmind bench generate`: prefill and decode speed of models with random weights, for each preset, batch size
// and weight storage (the storages side by side for each batch, so that a noisy machine affects them alike), and
// the decoding step's time by op from GPU timestamps.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "engine/context.hpp"
#include "engine/error.hpp"
#include "model/config.hpp"
#include "model/generate/decoder.hpp"
#include "model/params.hpp"
#include "tools/bench_util.hpp"
#include "tools/commands.hpp"
#include "tools/decoding.hpp"

namespace vkm::tools {

namespace {

struct BenchGenerateFlags {
  std::vector<std::string> presets{"minimind2-small"};
  std::string config;  // a config.json instead of the presets
  std::vector<int64_t> batches{1, 8};
  int64_t prompt_tokens = 64, new_tokens = 16, context = 512, repeats = 3;
  std::string cache = "f32";
  std::vector<std::string> weights{"auto"};
};

// The row a profiled dispatch counts under: linear layers by the weight they multiply (named from the config),
// other ops by kernel name without the variant.
std::string op_of(const std::string& label, const model::ModelConfig& c) {
  if (label.starts_with("matvec ")) {
    int64_t m = 0, n = 0, k = 0;
    std::sscanf(label.c_str(), "matvec %ldx%ldx%ld", &m, &n, &k);
    const int64_t C = c.hidden, q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
    std::string names;
    auto add = [&](bool match, const char* name) {
      if (match) names += (names.empty() ? "" : "/") + std::string(name);
    };
    add(n == q && k == C, "q");
    add(n == kv && k == C, "k/v");
    add(n == C && k == q, "o");
    add(n == 2 * c.ffn && k == C, "gate+up");
    add(n == C && k == c.ffn, "down");
    add(n == c.vocab && k == C, "head");
    return "linear " + names + " (" + std::to_string(n) + "x" + std::to_string(k) + ")";
  }
  const std::string name = label.substr(0, label.find(' '));
  return name.starts_with("kv_attention") ? name : name.substr(0, name.find('.'));
}

struct OpTime {
  int64_t dispatches = 0;
  std::vector<double> ms;  // per profiled step
};

void bench_one(Context& ctx, const model::ParamLayout& layout, const Tensor& params, const std::string& name,
               int64_t batch, const BenchGenerateFlags& f) {
  using clock = std::chrono::steady_clock;
  const model::ModelConfig& c = layout.config();
  model::DecoderOptions o;  // weights unset: the params are read in their own storage
  o.batch = batch;
  o.context = f.context;
  o.cache = f.cache == "f16" ? DType::f16 : DType::f32;
  o.sampling.temperature = 0;
  model::Decoder d(ctx, layout, params, o);
  std::vector<std::vector<int32_t>> prompts;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int32_t> p;
    for (int64_t i = 0; i < f.prompt_tokens; ++i) p.push_back(int32_t((i * 7919 + b * 104729) % c.vocab));
    prompts.push_back(std::move(p));
  }
  // A warm-up run builds every pipeline and records the programs.
  d.prefill(prompts);
  d.step();
  d.reset();
  const auto t0 = clock::now();
  d.prefill(prompts);
  const double prefill_ms = since_ms(t0);
  const auto t1 = clock::now();
  for (int64_t i = 0; i < f.new_tokens; ++i) d.step();
  const double decode_ms = since_ms(t1);
  std::map<std::string, OpTime> ops;
  std::vector<double> step_ms;
  for (int64_t r = 0; r < f.repeats; ++r) {
    double total = 0;
    std::map<std::string, double> this_step;
    for (const DispatchTiming& t : d.profile_step()) {
      this_step[op_of(t.label, c)] += t.ms;
      if (r == 0) ++ops[op_of(t.label, c)].dispatches;
      total += t.ms;
    }
    for (const auto& [name, ms] : this_step) ops[name].ms.push_back(ms);
    step_ms.push_back(total);
  }

  const double tokens = double(batch * f.prompt_tokens), steps = double(f.new_tokens);
  std::printf("\n%s (%lld parameters), batch %lld, prompts of %lld tokens, %s weights (%.1f MiB), %s cache of %lld "
              "positions, on %s\n",
              name.c_str(), (long long)layout.parameter_count(), (long long)batch, (long long)f.prompt_tokens,
              std::string(dtype_name(params.dtype)).c_str(), double(d.weight_bytes()) / (1 << 20), f.cache.c_str(),
              (long long)d.context(), ctx.info().name.c_str());
  std::printf("  prefill: %.0f tokens in %.1f ms, %.1f tokens/s\n", tokens, prefill_ms, tokens / prefill_ms * 1e3);
  std::printf("  decode:  %.0f steps in %.1f ms, %.2f ms per step, %.1f tokens/s\n", steps, decode_ms, decode_ms / steps,
              double(batch) * steps / decode_ms * 1e3);
  const double step = median(step_ms);
  std::printf("  decode step by op (GPU timestamps, median of %lld profiled steps, dispatches serialized): %.2f ms\n",
              (long long)f.repeats, step);
  std::printf("  | op | dispatches | ms | share |\n  |---|---:|---:|---:|\n");
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, t] : ops) rows.emplace_back(median(t.ms), name);
  std::ranges::sort(rows, std::greater<>());
  for (const auto& [ms, name] : rows)
    std::printf("  | %s | %lld | %.3f | %.1f%% |\n", name.c_str(), (long long)ops[name].dispatches, ms, 100 * ms / step);
  std::fflush(stdout);
}

int bench_generate(const Common& common, const BenchGenerateFlags& f) {
  if (f.prompt_tokens < 1 || f.new_tokens < 1 || f.repeats < 1) throw Error("--prompt-tokens, --new-tokens and --repeats must be positive");
  if (f.prompt_tokens + f.new_tokens + f.repeats + 1 > f.context)
    throw Error("--context " + std::to_string(f.context) + " cannot hold the prompt, the new tokens and the profiled steps");
  Context ctx(ContextOptions{common.device});
  const std::vector<std::string> models = f.config.empty() ? f.presets : std::vector<std::string>{f.config};
  for (const std::string& name : models) {
    const model::ParamLayout layout(f.config.empty() ? model::preset(name) : model::load_config(name));
    Arena arena(ctx, "weights");
    const std::vector<float> values = model::init_params(layout, 1);
    std::vector<Tensor> params;  // one upload per storage, each read by the decoder as it is
    for (const std::string& w : f.weights) params.push_back(upload_params(ctx, arena, values, weights_storage(w)));
    for (int64_t batch : f.batches)
      for (const Tensor& p : params) bench_one(ctx, layout, p, name, batch, f);
  }
  return 0;
}

}  // namespace

void add_bench_generate(CLI::App& bench, const Common& common, int& exit_code) {
  auto f = std::make_shared<BenchGenerateFlags>();
  CLI::App* sub = bench.add_subcommand("generate", "Prefill and decode tokens/s, and the decoding step by op");
  sub->add_option("--preset", f->presets, "Model presets (random weights)")->delimiter(',')->capture_default_str();
  sub->add_option("--config", f->config, "A config.json for the model's shape instead of the presets");
  sub->add_option("--batch", f->batches, "Batch sizes")->delimiter(',')->capture_default_str();
  sub->add_option("--prompt-tokens", f->prompt_tokens, "Prompt length per sequence")->capture_default_str();
  sub->add_option("--new-tokens", f->new_tokens, "Decoding steps timed")->capture_default_str();
  sub->add_option("--context", f->context, "Cache positions per sequence")->capture_default_str();
  sub->add_option("--repeats", f->repeats, "Profiled decoding steps")->capture_default_str();
  sub->add_option("--cache", f->cache, "f32 or f16")->check(CLI::IsMember({"f32", "f16"}))->capture_default_str();
  sub->add_option("--weights", f->weights, "Weight storages, e.g. f32,f16 (auto: f16 where the device has it)")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "f32", "f16"}))
      ->capture_default_str();
  on_run(sub, exit_code, [f, &common] { return bench_generate(common, *f); });
}

}  // namespace vkm::tools
