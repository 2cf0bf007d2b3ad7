// `vkmind pretrain`, `vkmind sft` and `vkmind eval`: the trainer's options on the command line. SIGINT makes
// the trainer write a checkpoint after the current step and stop (a second SIGINT kills at once).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "engine/context.hpp"
#include "model/train/trainer.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

void add_train_options(CLI::App* sub, train::TrainOptions& o) {
  sub->add_option("--data", o.data, "JSONL data set")->required();
  sub->add_option("--out", o.out, "Run folder: checkpoint/, model/, metrics.jsonl, run.json")->required();
  sub->add_option("--tokenizer", o.tokenizer, "tokenizer.json or its folder (default: the --from model's)");
  sub->add_option("--preset", o.preset, "Model shape: minimind2-small, minimind2, tiny")->capture_default_str();
  sub->add_option("--config", o.config_file, "A config.json for the model's shape instead of a preset");
  sub->add_flag("--resume", o.resume, "Continue the run in --out from its checkpoint, exactly");
  sub->add_option("--batch", o.batch, "Sequences per micro-batch")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seq", o.seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--accum", o.accum, "Micro-batches per optimizer step")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--precision", o.precision,
                  "fp32, fp16 (mixed: f16 activations and weight copy, fp32 master weights, dynamic loss scaling), "
                  "bf16 (the same in bf16, no loss scaling) or auto (fp16 where the device supports it)")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "bf16"}))
      ->capture_default_str();
  sub->add_option("--lr", o.lr, "Peak learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--warmup", o.warmup_steps, "Linear warmup steps")->check(CLI::NonNegativeNumber);
  sub->add_option("--weight-decay", o.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--clip", o.clip, "Gradient norm clip (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
  sub->add_option("--epochs", o.epochs, "Passes over the data")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--steps", o.max_steps, "Optimizer steps instead of epochs")->check(CLI::NonNegativeNumber);
  sub->add_option("--tokens", o.max_tokens, "A token budget instead of epochs")->check(CLI::NonNegativeNumber);
  sub->add_option("--seed", o.seed, "Initialization and shuffling")->capture_default_str();
  sub->add_option("--val-fraction", o.val_fraction, "Share of samples held out for validation")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  sub->add_option("--eval-every", o.eval_every, "Steps between validations (0: at the end)")->capture_default_str();
  sub->add_option("--eval-batches", o.eval_batches, "Batches per validation")->capture_default_str();
  sub->add_option("--save-every", o.save_every, "Steps between checkpoints (0: at the end)")->capture_default_str();
  sub->add_option("--log-every", o.log_every, "Steps between progress lines")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_flag("--skip-bad-lines", o.skip_bad_lines, "Count and skip malformed JSONL lines instead of stopping");
}

int run_training(const Common& common, const train::TrainOptions& options) {
  Context ctx(ContextOptions{common.device});
  train::TrainOptions o = options;
  o.stop = &g_stop;
  std::signal(SIGINT, on_sigint);
  const train::TrainResult r = train::train(ctx, o);
  std::signal(SIGINT, SIG_DFL);
  return r.interrupted ? 130 : 0;
}

}  // namespace

void add_train(CLI::App& app, const Common& common, int& exit_code) {
  auto pre = std::make_shared<train::TrainOptions>();
  CLI::App* p = app.add_subcommand("pretrain", "Pretrain a model on {\"text\": ...} JSONL");
  add_train_options(p, *pre);
  on_run(p, exit_code, [&common, pre] { return run_training(common, *pre); });

  auto sft = std::make_shared<train::TrainOptions>();
  sft->format = data::Format::sft;
  sft->lr = 5e-5;
  CLI::App* s = app.add_subcommand("sft", "Fine-tune a model on {\"conversations\": [...]} JSONL (ChatML)");
  add_train_options(s, *sft);
  s->add_option("--from", sft->from, "The pretrained model folder to start from");
  on_run(s, exit_code, [&common, sft] { return run_training(common, *sft); });

  struct EvalOptions {
    std::string model, data, format = "pretrain";
    int batch = 8, seq = 512;
    int64_t batches = 0;
  };
  auto e = std::make_shared<EvalOptions>();
  CLI::App* ev = app.add_subcommand("eval", "Loss and perplexity of a model on a JSONL data set");
  ev->add_option("--model", e->model, "Model folder")->required();
  ev->add_option("--data", e->data, "JSONL data set")->required();
  ev->add_option("--format", e->format, "pretrain ({\"text\"}) or sft ({\"conversations\"})")
      ->check(CLI::IsMember({"pretrain", "sft"}))
      ->capture_default_str();
  ev->add_option("--batch", e->batch, "Sequences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  ev->add_option("--seq", e->seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  ev->add_option("--batches", e->batches, "At most this many batches (0: the whole set)");
  on_run(ev, exit_code, [&common, e] {
    Context ctx(ContextOptions{common.device});
    const train::EvalResult r = train::evaluate(ctx, e->model, e->data,
                                                e->format == "sft" ? data::Format::sft : data::Format::pretrain,
                                                e->batch, e->seq, e->batches);
    std::printf("loss %.4f  perplexity %.3f  (%lld tokens in %lld batches)\n", r.loss, r.ppl, (long long)r.tokens,
                (long long)r.batches);
    return 0;
  });
}

}  // namespace vkm::tools
