#pragma once
// Pretraining and SFT of a MiniMind2 / LLaMA model on the engine, as MiniMind's train_pretrain.py and
// train_full_sft.py do it: AdamW (betas 0.9/0.95), lr·(0.1 + 0.45·(1 + cos(π·t/T))) after an optional linear
// warmup, global-norm clipping, gradient accumulation, a held-out validation split, checkpoints that resume
// exactly.
//
// One training step is one Program recorded once and resubmitted: zero the gradients; per micro-batch, copy
// its ids/targets/mask from host-visible slots into the transformer's inputs, forward, fused loss, backward
// (gradients accumulate), copy the loss out; then the gradient norm and clip factor, then AdamW. The host
// writes the next batches and the step's lr into mapped memory between submissions and reads back only the
// losses and the gradient statistics.
//
// A run folder OUT holds:
//   run.json        what was run (command, device, config, options)
//   metrics.jsonl   one line per step ({"kind":"train",...}) and per evaluation ({"kind":"val",...})
//   checkpoint/     the latest checkpoint (checkpoint.hpp): model, optimizer and trainer state
//   model/          the final model: config.json, model.safetensors, tokenizer.json, tokenizer_config.json
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/context.hpp"
#include "model/data/dataset.hpp"

namespace vkm::train {

struct TrainOptions {
  data::Format format = data::Format::pretrain;  // pretrain: {"text"}; sft: {"conversations"}
  std::filesystem::path data;                    // JSONL
  std::filesystem::path tokenizer;               // tokenizer.json or its folder; default: the --from model's
  std::filesystem::path out;                     // the run folder
  std::string preset = "minimind2-small";        // model shape, unless config_file or from is given
  std::filesystem::path config_file;             // a config.json
  std::filesystem::path from;                    // start from this model folder's weights (SFT from pretrain)
  bool resume = false;                           // continue from out/checkpoint

  int batch = 16, seq = 512, accum = 1;
  std::string precision = "auto";  // --precision: fp32, fp16 (mixed, dynamic loss scaling), bf16 or auto  // sequences per micro-batch, tokens per sequence, micro-batches per step
  double lr = 5e-4;
  int64_t warmup_steps = 0;
  double weight_decay = 0.01, clip = 1.0, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  int epochs = 1;
  int64_t max_steps = 0;     // >0: stop after this many optimizer steps (overrides epochs)
  int64_t max_tokens = 0;    // >0: a token budget instead of epochs (steps = tokens / (batch·seq·accum))
  uint64_t seed = 42;        // initialization and shuffling
  double val_fraction = 0.01;
  int64_t eval_every = 100;  // steps between validation passes (0: only at the end)
  int64_t eval_batches = 20;
  int64_t save_every = 500;  // steps between checkpoints (0: only at the end)
  int64_t log_every = 10;    // steps between progress lines
  bool skip_bad_lines = false;
  bool quiet = false;        // no progress lines (tests)

  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to checkpoint and return after the step
  std::function<void(int64_t step, double loss)> on_step;  // after each optimizer step (1-based), before `stop` is read
  int64_t nan_at_step = -1;  // tests: put a NaN into the loss mask of this 0-based step
  int64_t overflow_at_step = -1;  // tests, mixed precision: raise the loss scale to 2^30 before this 0-based step
};

struct TrainResult {
  int64_t steps_done = 0;     // optimizer steps completed, counting those before a resume
  int64_t total_steps = 0;
  bool interrupted = false;   // stopped by `stop`; a checkpoint was written
  double last_loss = 0;       // the last step's mean micro-batch loss
  double val_loss = 0, val_ppl = 0;  // the last validation (0 without a validation split)
  std::vector<float> losses;  // every step's loss of this call, in order
};

// MiniMind's learning rate at optimizer step t (0-based) of T: linear warmup from lr/warmup to lr over the
// first `warmup` steps, then lr·(0.1 + 0.45·(1 + cos(π·t/T))).
double learning_rate(double lr, int64_t t, int64_t T, int64_t warmup);

// The activations' type for --precision: f32 for "fp32", f16 for "fp16", bf16 for "bf16" (an error naming the
// device when it lacks the 16-bit support), and for "auto" f16 where the device has 16-bit support, else f32.
DType training_activations(const Context& ctx, const std::string& precision);

// Runs (or resumes) a training run. Throws vkm::Error for bad input, naming the file, line or flag; a NaN or
// infinite loss stops the run with an error naming the step (the last checkpoint stays as it was). In mixed
// precision a step whose gradients overflow is skipped and the loss scale halved, as PyTorch's GradScaler
// does; only an overflow at the smallest scale (1) stops the run.
TrainResult train(Context& ctx, const TrainOptions& options);

// The mean loss and perplexity of a model folder over a data set (every sample, in file order).
struct EvalResult {
  double loss = 0, ppl = 0;
  int64_t tokens = 0, batches = 0;
};
EvalResult evaluate(Context& ctx, const std::filesystem::path& model_dir, const std::filesystem::path& data,
                    data::Format format, int batch, int seq, int64_t max_batches = 0);

}  // namespace vkm::train
