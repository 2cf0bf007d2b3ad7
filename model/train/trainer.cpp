#include "model/train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numbers>
#include <optional>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "engine/ops/common.hpp"
#include "model/config.hpp"
#include "model/data/batcher.hpp"
#include "model/data/token_cache.hpp"
#include "model/io/model_files.hpp"
#include "model/params.hpp"
#include "model/report/report.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/train/checkpoint.hpp"
#include "model/train/graph.hpp"
#include "model/train/progress.hpp"

namespace vkm::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double learning_rate(double lr, int64_t t, int64_t T, int64_t warmup) {
  if (t < warmup) return lr * double(t + 1) / double(warmup);
  return lr * (0.1 + 0.45 * (1.0 + std::cos(std::numbers::pi * double(t) / double(std::max<int64_t>(T, 1)))));
}

DType training_activations(const Context& ctx, const std::string& precision) {
  if (precision == "fp32") return DType::f32;
  if (precision == "fp16" || precision == "bf16") {
    const DType t = precision == "fp16" ? DType::f16 : DType::bf16;
    if (!ops::has_storage(ctx, t))
      throw Error("--precision " + precision + ": device '" + ctx.info().name +
                  "' lacks the 16-bit storage or arithmetic it needs (see vkmind devices); use --precision fp32");
    return t;
  }
  if (precision == "auto") return ops::has_16bit(ctx) ? DType::f16 : DType::f32;
  throw Error("--precision " + precision + ": expected fp32, fp16, bf16 or auto");
}

namespace {

const char* precision_name(DType act) { return act == DType::f16 ? "fp16" : act == DType::bf16 ? "bf16" : "fp32"; }

// The model's shape and starting weights: a --from model folder, a --config file or a preset.
struct Start {
  model::ModelConfig config;
  std::vector<float> params;  // empty: initialize from the seed
};

Start choose_model(const TrainOptions& o) {
  if (!o.from.empty()) {
    io::ModelFiles m = io::load_model(o.from);
    return {m.config, std::move(m.params)};
  }
  if (!o.config_file.empty()) return {model::load_config(o.config_file.string()), {}};
  return {model::preset(o.preset), {}};
}

// A tokenizer with more ids than the model's embedding rows would index past them.
void check_vocab(const tok::Tokenizer& t, const model::ModelConfig& config, const fs::path& source) {
  if (t.vocab_size() > config.vocab)
    throw Error("the tokenizer " + source.string() + " has " + std::to_string(t.vocab_size()) +
                " tokens but the model's vocab_size is " + std::to_string(config.vocab) +
                "; train the tokenizer with --vocab " + std::to_string(config.vocab) + " or pick a matching model");
}

tok::Tokenizer load_tokenizer(const TrainOptions& o, const model::ModelConfig& config) {
  fs::path path = o.tokenizer;
  if (path.empty() && !o.from.empty()) path = o.from;
  if (path.empty()) throw Error("train: --tokenizer is required (a tokenizer.json or its folder)");
  tok::Tokenizer t = tok::Tokenizer::load(path);
  check_vocab(t, config, path);
  return t;
}

// What must not change between a run and its resumption, for the continuation to be exact.
nlohmann::json resume_key(const TrainOptions& o, const fs::path& data, int64_t total_steps, DType act) {
  return {{"format", data::format_name(o.format)},
          {"precision", precision_name(act)},
          {"data", fs::absolute(data).lexically_normal().string()},
          {"data_bytes", fs::file_size(data)},
          {"batch", o.batch},
          {"seq", o.seq},
          {"accum", o.accum},
          {"lr", o.lr},
          {"warmup_steps", o.warmup_steps},
          {"weight_decay", o.weight_decay},
          {"clip", o.clip},
          {"beta1", o.beta1},
          {"beta2", o.beta2},
          {"eps", o.eps},
          {"seed", o.seed},
          {"val_fraction", o.val_fraction},
          {"total_steps", total_steps}};
}

void check_resumable(const nlohmann::json& saved, const nlohmann::json& now, const fs::path& dir) {
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key) || saved[key] != value)
      throw Error("--resume: " + key + " is " + value.dump() + " but the checkpoint in " + dir.string() +
                  " was trained with " + (saved.contains(key) ? saved[key].dump() : "no value") +
                  "; pass the run's original flags to continue it exactly");
  }
}

bool has_validation(const data::TokenDataset& d, double fraction) {
  if (fraction <= 0) return false;
  for (size_t i = 0; i < d.size(); ++i)
    if (data::in_validation(i, fraction, data::BatcherOptions{}.split_seed)) return true;
  return false;
}

// The mean token loss over up to `max_batches` batches from the batcher's start, weighting each batch by its
// counted tokens, as a loss over all of them.
EvalResult run_eval(TrainGraph& graph, data::Batcher& batcher, int64_t max_batches) {
  batcher.restore({});
  const int64_t n = max_batches > 0 ? std::min<int64_t>(max_batches, int64_t(batcher.batches_per_epoch()))
                                    : int64_t(batcher.batches_per_epoch());
  double sum = 0, count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const data::Batch b = batcher.next();
    double c = 0;
    for (float m : b.loss_mask) c += m;
    if (c == 0) continue;
    sum += graph.eval(b) * c;
    count += c;
  }
  EvalResult r;
  r.batches = n;
  r.tokens = int64_t(count);
  r.loss = count > 0 ? sum / count : 0;
  r.ppl = std::exp(r.loss);
  return r;
}

// A copy of the batch with a NaN in its loss mask: the device then computes a NaN loss and NaN gradients, as
// bad data or an overflow would.
data::Batch poisoned(data::Batch b) {
  b.loss_mask[0] = std::nanf("");
  return b;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class MetricsLog {
 public:
  explicit MetricsLog(const fs::path& path) : f_(path, std::ios::app) {
    if (!f_) throw Error(path.string() + ": cannot open for appending");
  }
  void write(const nlohmann::json& j) {
    f_ << j.dump() << '\n';
    f_.flush();
  }

 private:
  std::ofstream f_;
};

}  // namespace

TrainResult train(Context& ctx, const TrainOptions& o) {
  if (o.data.empty()) throw Error("train: --data is required");
  if (o.out.empty()) throw Error("train: --out is required");
  const fs::path ckpt_dir = o.out / "checkpoint";
  std::optional<Checkpoint> resumed;
  if (o.resume) {
    if (find_checkpoint(ckpt_dir).empty())
      throw Error("--resume: no checkpoint in " + ckpt_dir.string() + " (was the run started with this --out?)");
    resumed = load_checkpoint(ckpt_dir);
  }
  Start start = choose_model(o);
  if (resumed) {
    if (model::config_to_json(resumed->config) != model::config_to_json(start.config))
      throw Error("--resume: the checkpoint in " + ckpt_dir.string() +
                  " holds a model of another shape than the one asked for (compare its config.json with the flags)");
  }
  const model::ModelConfig& config = start.config;
  config.validate();
  const tok::Tokenizer tokenizer = load_tokenizer(o, config);

  data::CacheOptions cache;
  cache.format = o.format;
  cache.skip_bad_lines = o.skip_bad_lines;
  const data::TokenDataset dataset = data::TokenDataset::open(o.data, tokenizer, cache);
  if (dataset.skipped_lines() && !o.quiet)
    std::printf("data: skipped %llu malformed lines of %s\n", (unsigned long long)dataset.skipped_lines(),
                o.data.string().c_str());
  data::BatcherOptions bo;
  bo.batch_size = o.batch;
  bo.seq_len = o.seq;
  bo.seed = o.seed;
  bo.val_fraction = o.val_fraction;
  data::Batcher train_batches(dataset, bo);
  std::optional<data::Batcher> val_batches;
  if (has_validation(dataset, o.val_fraction)) {
    data::BatcherOptions vo = bo;
    vo.split = data::Split::validation;
    vo.shuffle = false;
    val_batches.emplace(dataset, vo);
  }

  const int64_t per_step = int64_t(o.batch) * o.seq * o.accum;
  int64_t total = o.max_steps > 0    ? o.max_steps
                  : o.max_tokens > 0 ? (o.max_tokens + per_step - 1) / per_step
                                     : std::max<int64_t>(1, int64_t(train_batches.batches_per_epoch()) * o.epochs / o.accum);
  const DType act = training_activations(ctx, o.precision);
  const nlohmann::json key = resume_key(o, o.data, total, act);

  const model::ParamLayout layout(config);
  GraphOptions go;
  go.batch = o.batch, go.seq = o.seq, go.accum = o.accum;
  go.adamw = {float(o.beta1), float(o.beta2), float(o.eps), float(o.weight_decay)};
  go.clip = o.clip;
  go.activations = act;
  TrainGraph graph(ctx, layout, go);

  TrainerState state;
  state.total_steps = total;
  state.options = key;
  if (resumed) {
    check_resumable(resumed->state.options, key, ckpt_dir);
    state = resumed->state;
    graph.upload(resumed->params, resumed->m, resumed->v);
    graph.set_loss_scale(state.loss_scale);
    train_batches.restore(state.cursor);
  } else {
    graph.upload(start.params.empty() ? model::init_params(layout, o.seed) : start.params);
  }

  fs::create_directories(o.out);
  {
    const nlohmann::json run = {{"command", o.format == data::Format::sft ? "sft" : "pretrain"},
                                {"device", ctx.info().name},
                                {"parameters", config.parameter_count()},
                                {"config", nlohmann::json::parse(model::config_to_json(config))},
                                {"options", key}};
    std::ofstream(o.out / "run.json") << run.dump(2) << '\n';
  }
  MetricsLog metrics(o.out / "metrics.jsonl");
  Progress progress(total, o.quiet);
  if (!o.quiet) {
    std::printf("model: %lld parameters (%s), %lld layers, hidden %lld; device %s; %s\n",
                (long long)config.parameter_count(), o.from.empty() ? "new" : o.from.string().c_str(),
                (long long)config.layers, (long long)config.hidden, ctx.info().name.c_str(),
                graph.loss_scaled() ? "mixed precision fp16 with dynamic loss scaling"
                : graph.mixed()     ? "mixed precision bf16"
                                    : "fp32");
    std::printf("data: %zu samples, %llu tokens; %zu for training%s; %lld steps of %lld tokens%s\n", dataset.size(),
                (unsigned long long)dataset.num_tokens(), train_batches.num_samples(),
                val_batches ? (", " + std::to_string(val_batches->num_samples()) + " held out").c_str() : "",
                (long long)total, (long long)per_step, resumed ? (", resuming after step " + std::to_string(state.step)).c_str() : "");
    if (o.format == data::Format::sft && train_batches.truncated_samples())
      std::printf("data: %llu samples longer than %d tokens are truncated\n",
                  (unsigned long long)train_batches.truncated_samples(), o.seq + 1);
  }

  TrainResult result;
  result.total_steps = total;
  const double elapsed_before = state.elapsed_s;  // by earlier sessions of a resumed run
  auto save = [&] {
    state.elapsed_s = elapsed_before + progress.seconds();
    save_checkpoint(ckpt_dir, layout, graph.params(), graph.m(), graph.v(), state, tokenizer);
    report::write_report(o.out);
  };
  auto validate = [&] {
    if (!val_batches) return;
    const EvalResult e = run_eval(graph, *val_batches, o.eval_batches);
    result.val_loss = e.loss;
    result.val_ppl = e.ppl;
    metrics.write({{"kind", "val"}, {"time", unix_seconds()}, {"step", state.step}, {"tokens", state.tokens}, {"loss", e.loss}, {"ppl", e.ppl}});
    progress.validation(state.step, e.loss, e.ppl);
  };

  // Batches for the next step are drawn while the device runs the current one.
  std::vector<data::Batch> next(size_t(o.accum));
  for (auto& b : next) b = train_batches.next();
  while (state.step < total) {
    for (int k = 0; k < o.accum; ++k) graph.set_batch(k, next[size_t(k)]);
    if (state.step == o.nan_at_step) graph.set_batch(0, poisoned(next[0]));
    if (state.step == o.overflow_at_step && graph.loss_scaled()) {
      state.loss_scale.scale = 1 << 30;  // the loss's gradient then overflows f16
      graph.set_loss_scale(state.loss_scale);
    }
    const float scale_used = state.loss_scale.scale;
    const double lr = learning_rate(o.lr, state.step, total, o.warmup_steps);
    graph.submit_step(lr, uint32_t(state.step + 1));
    const data::Cursor after = train_batches.cursor();
    if (state.step + 1 < total)
      for (auto& b : next) b = train_batches.next();
    const StepStats s = graph.finish_step();
    state.loss_scale = graph.loss_scale();
    const bool overflow_at_floor = graph.loss_scaled() && s.non_finite && scale_used <= 1.0f;
    if (!std::isfinite(s.loss) || overflow_at_floor)
      throw Error("step " + std::to_string(state.step + 1) + ": the " +
                  (overflow_at_floor ? "gradients are not finite even at loss scale 1"
                                     : "loss is " + std::to_string(s.loss)) +
                  "; training stopped. The last good checkpoint is " +
                  (find_checkpoint(ckpt_dir).empty() ? std::string("none (no checkpoint was written yet)")
                                                     : ckpt_dir.string()) +
                  "; lower --lr or check the data");
    ++state.step;
    state.tokens += uint64_t(per_step);
    state.cursor = after;
    result.losses.push_back(float(s.loss));
    result.last_loss = s.loss;
    ProgressLine line = progress.step(state.step, s.loss, lr, s.grad_norm, per_step);
    if (graph.loss_scaled())
      line.loss_scale = state.loss_scale.scale, line.skipped = int64_t(state.loss_scale.skipped_steps);
    metrics.write({{"kind", "train"},
                   {"time", unix_seconds()},
                   {"step", state.step},
                   {"total_steps", total},
                   {"epoch", double(state.tokens) / double(std::max<uint64_t>(1, dataset.num_tokens()))},
                   {"tokens", state.tokens},
                   {"loss", s.loss},
                   {"lr", lr},
                   {"grad_norm", s.grad_norm},
                   {"skipped", s.non_finite},
                   {"loss_scale", state.loss_scale.scale},
                   {"tokens_per_s", line.tokens_per_s},
                   {"elapsed_s", elapsed_before + progress.seconds()}});
    if (state.step % std::max<int64_t>(1, o.log_every) == 0 || state.step == total) progress.print(line);
    const bool last = state.step == total;
    if ((o.eval_every > 0 && state.step % o.eval_every == 0) || last) validate();
    if (o.on_step) o.on_step(state.step, s.loss);
    const bool stop = o.stop && o.stop->load();
    if ((o.save_every > 0 && state.step % o.save_every == 0) || last || stop) save();
    if (stop && !last) {
      result.interrupted = true;
      if (!o.quiet)
        std::printf("interrupted after step %lld: checkpoint written to %s; continue with the same command and --resume\n",
                    (long long)state.step, ckpt_dir.string().c_str());
      break;
    }
  }
  result.steps_done = state.step;
  if (state.step == total) {
    io::save_model(o.out / "model", layout, graph.params(), DType::f32);
    tokenizer.save(o.out / "model");
    if (!o.quiet)
      std::printf("model saved to %s; report: %s\n", (o.out / "model").string().c_str(),
                  (o.out / "report.html").string().c_str());
  }
  return result;
}

EvalResult evaluate(Context& ctx, const fs::path& model_dir, const fs::path& data, data::Format format, int batch,
                    int seq, int64_t max_batches) {
  io::ModelFiles m = io::load_model(model_dir);
  const tok::Tokenizer tokenizer = io::load_model_tokenizer(model_dir);
  check_vocab(tokenizer, m.config, model_dir);
  data::CacheOptions cache;
  cache.format = format;
  const data::TokenDataset dataset = data::TokenDataset::open(data, tokenizer, cache);
  data::BatcherOptions bo;
  bo.batch_size = batch;
  bo.seq_len = seq;
  bo.shuffle = false;
  data::Batcher batches(dataset, bo);
  const model::ParamLayout layout(m.config);
  GraphOptions go;
  go.batch = batch, go.seq = seq, go.with_optimizer = false;
  TrainGraph graph(ctx, layout, go);
  graph.upload(m.params);
  return run_eval(graph, batches, max_batches);
}

}  // namespace vkm::train
