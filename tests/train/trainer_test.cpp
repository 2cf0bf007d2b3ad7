// The trainer end to end on lavapipe: the loss of a small model falls on real text, SFT from that model
// learns the answers, a run stopped halfway resumes bit for bit, and bad input stops with a clear message.
#include <cmath>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/memory.hpp"
#include "model/generate/chat.hpp"
#include "model/generate/decoder.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/io/model_files.hpp"
#include "model/train/checkpoint.hpp"
#include "model/train/trainer.hpp"
#include "tests/support/test_util.hpp"
#include "tests/support/train_runs.hpp"

namespace vkm {
namespace {

namespace fs = std::filesystem;
using test::ctx;
using test::TempDir;
using train::TrainOptions;

// Mixed precision has its own test (mixed_precision_test): these runs are fp32 (test::small_train_run).
TrainOptions small_run(const TempDir& d, const std::string& data_name) { return test::small_train_run(d, data_name); }

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::ifstream f(p);
  std::vector<nlohmann::json> v;
  for (std::string line; std::getline(f, line);) v.push_back(nlohmann::json::parse(line));
  return v;
}

TEST(LearningRate, MiniMindScheduleWithWarmup) {
  EXPECT_DOUBLE_EQ(train::learning_rate(1.0, 0, 100, 0), 1.0);
  EXPECT_DOUBLE_EQ(train::learning_rate(1.0, 50, 100, 0), 0.55);
  EXPECT_NEAR(train::learning_rate(1.0, 100, 100, 0), 0.1, 1e-15);
  EXPECT_DOUBLE_EQ(train::learning_rate(2.0, 0, 100, 4), 0.5);
  EXPECT_DOUBLE_EQ(train::learning_rate(2.0, 3, 100, 4), 2.0);
  EXPECT_DOUBLE_EQ(train::learning_rate(2.0, 4, 100, 4), 2.0 * (0.1 + 0.45 * (1 + std::cos(std::numbers::pi * 0.04))));
}

// The proof: validation loss well under ln(V) after a bounded number of steps on real text, the run's files,
// and a model folder that evaluates to the same loss.
TEST(Trainer, PretrainLossFallsOnRealText) {
  TempDir d;
  TrainOptions o = small_run(d, "corpus_sample.jsonl");
  o.max_steps = 80;
  o.eval_every = 40;
  o.lr = 1e-2;
  const train::TrainResult r = train::train(ctx(), o);
  const double uniform = std::log(1200.0);
  std::printf("  loss %.3f -> %.3f, validation loss %.3f (perplexity %.1f); ln(V) = %.3f\n", r.losses.front(),
              r.last_loss, r.val_loss, r.val_ppl, uniform);
  EXPECT_EQ(r.steps_done, 80);
  EXPECT_NEAR(r.losses.front(), uniform, 0.1) << "a fresh model predicts about uniformly";
  EXPECT_LT(r.val_loss, 0.8 * uniform);

  const auto lines = read_jsonl(o.out / "metrics.jsonl");
  int train_lines = 0, val_lines = 0;
  for (const auto& j : lines) (j["kind"] == "train" ? train_lines : val_lines) += 1;
  EXPECT_EQ(train_lines, 80);
  EXPECT_EQ(val_lines, 2);
  EXPECT_EQ(lines.back()["kind"], "val");
  EXPECT_TRUE(fs::exists(o.out / "run.json"));
  EXPECT_TRUE(fs::exists(o.out / "checkpoint" / "trainer_state.json"));

  const train::EvalResult e = train::evaluate(ctx(), o.out / "model", o.data, data::Format::pretrain, 4, 64, 8);
  std::printf("  vkmind eval of the saved model on the file's first 8 batches: loss %.3f\n", e.loss);
  EXPECT_LT(e.loss, uniform - 1.0);
  EXPECT_GT(e.tokens, 0);
}

// 2N steps straight, and N steps, a stop, then --resume for the rest: the same losses and weights, bit for bit.
TEST(Trainer, ResumeContinuesExactly) {
  TempDir d;
  TrainOptions o = small_run(d, "corpus_sample.jsonl");
  o.max_steps = 6;
  o.accum = 2;
  o.batch = 2;
  o.eval_every = 3;
  const train::TrainResult straight = train::train(ctx(), o);
  const std::vector<float> straight_params = io::load_model(o.out / "model").params;

  o.out = d.path / "stopped";
  const train::TrainResult first = test::train_until(o, 3);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps_done, 3);
  EXPECT_FALSE(fs::exists(o.out / "model")) << "the final model is written only at the end";

  o.resume = true;
  const train::TrainResult rest = train::train(ctx(), o);
  EXPECT_EQ(rest.steps_done, 6);
  ASSERT_EQ(first.losses.size() + rest.losses.size(), straight.losses.size());
  for (size_t i = 0; i < straight.losses.size(); ++i) {
    const float got = i < 3 ? first.losses[i] : rest.losses[i - 3];
    EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(straight.losses[i])) << "step " << i + 1;
  }
  const std::vector<float> resumed_params = io::load_model(o.out / "model").params;
  EXPECT_TRUE(resumed_params == straight_params) << "final weights differ";
  EXPECT_EQ(rest.val_loss, straight.val_loss);
}

TEST(Trainer, NanLossStopsAndKeepsTheLastCheckpoint) {
  TempDir d;
  TrainOptions o = small_run(d, "corpus_sample.jsonl");
  o.max_steps = 10;
  o.save_every = 2;
  o.nan_at_step = 4;  // the fifth step
  test::expect_error("step 5: the loss is nan; training stopped. The last good checkpoint is " +
                         (o.out / "checkpoint").string(),
                     [&] { train::train(ctx(), o); });
  EXPECT_EQ(train::load_checkpoint(o.out / "checkpoint").state.step, 4);
}

TEST(Trainer, BadInputIsNamed) {
  TempDir d;
  TrainOptions o = small_run(d, "corpus_sample.jsonl");
  o.max_steps = 1;

  TrainOptions bad = o;
  bad.data = d.write("bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": 3}\n{\"text\": \"also fine\"}\n");
  test::expect_error((d.path / "bad.jsonl").string() + ":2:", [&] { train::train(ctx(), bad); });
  bad.skip_bad_lines = true;
  bad.val_fraction = 0;
  bad.out = d.path / "skipped";
  EXPECT_EQ(train::train(ctx(), bad).steps_done, 1);

  TrainOptions empty = o;
  empty.data = d.write("empty.jsonl", "");
  test::expect_error("empty.jsonl:1: empty file", [&] { train::train(ctx(), empty); });

  TrainOptions missing = o;
  missing.data = d.path / "nope.jsonl";
  test::expect_error("nope.jsonl", [&] { train::train(ctx(), missing); });

  TrainOptions small_vocab = o;
  small_vocab.config_file.clear();
  small_vocab.preset = "tiny";  // 300 tokens
  test::expect_error("has 1200 tokens but the model's vocab_size is 300", [&] { train::train(ctx(), small_vocab); });

  TrainOptions no_ckpt = o;
  no_ckpt.resume = true;
  test::expect_error("--resume: no checkpoint in", [&] { train::train(ctx(), no_ckpt); });

  // A finished run, then resumptions that cannot be exact.
  ASSERT_EQ(train::train(ctx(), o).steps_done, 1);
  TrainOptions other_batch = o;
  other_batch.resume = true;
  other_batch.batch = 3;
  test::expect_error("--resume: batch is 3 but the checkpoint", [&] { train::train(ctx(), other_batch); });
  TrainOptions other_shape = o;
  other_shape.resume = true;
  other_shape.config_file.clear();
  other_shape.preset = "minimind2-small";
  test::expect_error("holds a model of another shape", [&] { train::train(ctx(), other_shape); });

  // A corrupt checkpoint: one byte of the weights changed.
  const fs::path weights = o.out / "checkpoint" / "model.safetensors";
  {
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-5, std::ios::end);
    f.put('\x7f');
  }
  TrainOptions again = o;
  again.resume = true;
  test::expect_error(weights.string() + ": checksum mismatch", [&] { train::train(ctx(), again); });
  fs::resize_file(weights, fs::file_size(weights) - 100);
  test::expect_error("(truncated or replaced)", [&] { train::train(ctx(), again); });
}

// SFT from a pretrained model on the committed conversations: the loss on the assistants' answers falls far
// below where it starts.
TEST(Trainer, SftFromPretrainedLearnsTheAnswers) {
  TempDir d;
  TrainOptions pre = small_run(d, "corpus_sample.jsonl");
  pre.max_steps = 30;
  pre.out = d.path / "pre";
  train::train(ctx(), pre);

  TrainOptions sft = small_run(d, "sft_sample.jsonl");
  sft.format = data::Format::sft;
  sft.config_file.clear();
  sft.tokenizer.clear();  // the pretrained model's own
  sft.from = pre.out / "model";
  sft.out = d.path / "sft";
  sft.seq = 128;
  sft.val_fraction = 0;
  sft.epochs = 60;
  sft.lr = 3e-3;
  const train::TrainResult r = train::train(ctx(), sft);
  std::printf("  %lld SFT steps: loss %.3f -> %.3f\n", (long long)r.steps_done, r.losses.front(), r.last_loss);
  EXPECT_LT(r.last_loss, 0.2 * r.losses.front());
  const train::EvalResult e = train::evaluate(ctx(), sft.out / "model", sft.data, data::Format::sft, 4, 128);
  std::printf("  eval on the conversations: loss %.3f\n", e.loss);
  EXPECT_LT(e.loss, 0.5);

  // Greedy chat with the fine-tuned model: asked a trained single-turn question, it answers as trained.
  const io::ModelFiles m = io::load_model(sft.out / "model");
  const tok::Tokenizer tokenizer = tok::Tokenizer::load(sft.out / "model");
  const model::ParamLayout layout(m.config);
  Arena arena(ctx(), "sft model");
  const model::ParamBuffers weights = model::allocate_params(arena, layout, false);
  ctx().write(weights.values, m.params);
  model::Decoder decoder(ctx(), layout, weights.values, {.batch = 1, .context = 256, .sampling = {.temperature = 0}});
  int asked = 0, reproduced = 0;
  std::ifstream lines(sft.data);
  for (std::string line; std::getline(lines, line);) {
    const auto turns = nlohmann::json::parse(line)["conversations"];
    const bool with_system = turns[0]["role"] == "system";
    if (turns.size() != (with_system ? 3u : 2u)) continue;
    model::ChatSession chat(decoder, tokenizer, {with_system ? turns[0]["content"].get<std::string>() : "", 80});
    const std::string want = turns.back()["content"];
    const model::ChatReply reply = chat.ask(turns[with_system ? 1 : 0]["content"].get<std::string>());
    ++asked;
    reproduced += reply.text == want;
    if (reply.text == want && reproduced == 1) std::printf("  reproduced: %s\n", reply.text.c_str());
  }
  std::printf("  %d of %d single-turn answers reproduced exactly\n", reproduced, asked);
  EXPECT_GE(2 * reproduced, asked) << "at least half of the trained answers come back word for word";
}

}  // namespace
}  // namespace vkm
