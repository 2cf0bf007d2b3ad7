// Mixed-precision training (--precision fp16 and bf16) end to end on lavapipe, which has fp16 arithmetic and
// 16-bit storage: the same run in fp16, bf16 and fp32 ends at the same validation loss (within 2%), an fp16
// overflow is skipped and the loss scale recovers, and a stopped fp16 run resumes bit for bit, scale included.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/ops/common.hpp"
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

// The trainer test's small run (test::small_train_run) at `precision`, into d/name, at the higher learning rate
// of the trainer's pretraining proof.
TrainOptions small_run(const TempDir& d, const std::string& precision, const std::string& name) {
  TrainOptions o = test::small_train_run(d, "corpus_sample.jsonl");
  o.out = d.path / name;
  o.precision = precision;
  o.lr = 1e-2;
  return o;
}

std::vector<nlohmann::json> train_lines(const fs::path& run) {
  std::ifstream f(run / "metrics.jsonl");
  std::vector<nlohmann::json> v;
  for (std::string line; std::getline(f, line);) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j["kind"] == "train") v.push_back(j);
  }
  return v;
}

class MixedPrecision : public testing::Test {
 protected:
  void SetUp() override {
    if (!ops::has_16bit(ctx())) GTEST_SKIP() << "device '" << ctx().info().name << "' lacks 16-bit support";
  }
};

TEST_F(MixedPrecision, Fp16AndBf16EndWithinTwoPercentOfFp32) {
  TempDir d;
  TrainOptions o32 = small_run(d, "fp32", "fp32"), o16 = small_run(d, "fp16", "fp16"),
               obf = small_run(d, "bf16", "bf16");
  o32.max_steps = o16.max_steps = obf.max_steps = 80;
  const train::TrainResult r32 = train::train(ctx(), o32), r16 = train::train(ctx(), o16),
                           rbf = train::train(ctx(), obf);
  std::printf("  validation loss after 80 steps: fp32 %.4f, fp16 %.4f (%+.2f%%), bf16 %.4f (%+.2f%%)\n",
              r32.val_loss, r16.val_loss, 100 * (r16.val_loss / r32.val_loss - 1), rbf.val_loss,
              100 * (rbf.val_loss / r32.val_loss - 1));
  EXPECT_LT(r32.val_loss, 0.8 * std::log(1200.0)) << "the runs must have learned something to compare";
  EXPECT_LE(std::abs(r16.val_loss / r32.val_loss - 1), 0.02);
  EXPECT_LE(std::abs(rbf.val_loss / r32.val_loss - 1), 0.02);
  EXPECT_EQ(train_lines(obf.out).front()["loss_scale"], 1.0) << "bf16 needs no loss scale";

  // The fp16 run's log: the scale on every line, no skipped step at the initial scale on this model.
  const auto lines = train_lines(o16.out);
  ASSERT_EQ(lines.size(), 80u);
  for (const auto& j : lines) {
    EXPECT_EQ(j["loss_scale"], 65536.0);
    EXPECT_EQ(j["skipped"], false);
  }
  EXPECT_EQ(train_lines(o32.out).front()["loss_scale"], 1.0);
}

// The tensor-core kernels (matmul and attention, shaders/coopmat.glsl) in a whole training run: with their
// fragments emulated, the fp16 run takes them for every product and attention pass that fits, and ends where
// the tiled kernels' run ends. On a GPU with tensor cores the plain fp16 run above already takes them.
TEST_F(MixedPrecision, Fp16ThroughTheCooperativeKernelsEndsWhereTheTiledOnesDo) {
  ContextOptions emulating;
  emulating.emulate_cooperative_matrix = true;
  Context coop(emulating);
  TempDir d;
  TrainOptions tiled = small_run(d, "fp16", "tiled"), emulated = small_run(d, "fp16", "emulated");
  tiled.max_steps = emulated.max_steps = 40;
  const train::TrainResult rt = train::train(ctx(), tiled), re = train::train(coop, emulated);
  std::printf("  validation loss after 40 fp16 steps: tiled kernels %.4f, cooperative kernels (emulated) %.4f\n",
              rt.val_loss, re.val_loss);
  EXPECT_LE(std::abs(re.val_loss / rt.val_loss - 1), 0.01);
  const std::vector<std::string> built = coop.built_variants();
  for (const char* variant : {"matmul.nt_f16_coop_emu", "matmul.nn_f16_coop_emu", "matmul.tn_f16_f32out_coop_emu",
                              "attention.forward_f16_emulated", "attention.dq_f16_emulated",
                              "attention.dkdv_f16_emulated"})
    EXPECT_NE(std::find(built.begin(), built.end(), variant), built.end()) << variant << " did not run";
}

// A loss scale far past what f16 holds makes the gradients overflow: that step and the next few are skipped
// (the weights do not move), each halving the scale, until the gradients fit again and training goes on. Later,
// the scale sits near the largest that fits, so an occasional step overflows and halves it again, as with
// PyTorch's GradScaler.
TEST_F(MixedPrecision, OverflowIsSkippedAndTheScaleRecovers) {
  TempDir d;
  TrainOptions o = small_run(d, "fp16", "overflow");
  o.max_steps = 40;
  o.overflow_at_step = 10;
  const train::TrainResult r = train::train(ctx(), o);
  ASSERT_EQ(r.steps_done, 40);
  const auto lines = train_lines(o.out);
  for (size_t i = 0; i < 10; ++i) EXPECT_FALSE(lines[i]["skipped"]) << "step " << i + 1;
  size_t block = 0;  // the skipped steps from the injected one on, each halving the scale
  while (10 + block < lines.size() && lines[10 + block]["skipped"]) {
    EXPECT_EQ(lines[10 + block]["loss_scale"], std::ldexp(1.0, 29 - int(block))) << "step " << 11 + block;
    ++block;
  }
  int later = 0;
  for (size_t i = 10 + block; i < lines.size(); ++i) later += lines[i]["skipped"] ? 1 : 0;
  std::printf("  %zu steps skipped after the injected overflow (scale then %g), %d later; final scale %g\n", block,
              double(lines[10 + block - 1]["loss_scale"]), later, double(lines.back()["loss_scale"]));
  EXPECT_GE(block, 1u) << "the step with the injected scale";
  EXPECT_LE(block, 10u) << "the scale should come down to where f16 holds the gradients within a few steps";
  EXPECT_LE(later, 8) << "the scale settles where the gradients fit";
  EXPECT_GE(double(lines.back()["loss_scale"]), 65536.0) << "the scale collapsed";
  EXPECT_TRUE(std::isfinite(r.last_loss));
  EXPECT_LT(r.val_loss, 0.85 * std::log(1200.0)) << "training went on after the overflow";
  EXPECT_EQ(train::load_checkpoint(o.out / "checkpoint").state.loss_scale.skipped_steps, float(block + later));
}

// Stopped after step 3 and resumed: the same losses and weights as straight through, bit for bit. The loss
// scale was changed by an overflow before the stop, so a resumption that forgot it would diverge.
TEST_F(MixedPrecision, ResumeRestoresTheLossScale) {
  TempDir d;
  TrainOptions o = small_run(d, "fp16", "straight");
  o.max_steps = 6;
  o.overflow_at_step = 1;
  const train::TrainResult straight = train::train(ctx(), o);
  const std::vector<float> straight_params = io::load_model(o.out / "model").params;

  o.out = d.path / "stopped";
  ASSERT_TRUE(test::train_until(o, 3).interrupted);
  const train::Checkpoint ckpt = train::load_checkpoint(o.out / "checkpoint");
  EXPECT_LT(ckpt.state.loss_scale.scale, float(1 << 30));
  EXPECT_GE(ckpt.state.loss_scale.skipped_steps, 1.0f);

  o.resume = true;
  o.overflow_at_step = -1;  // already happened before the stop
  const train::TrainResult rest = train::train(ctx(), o);
  ASSERT_EQ(rest.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(rest.losses[i]), std::bit_cast<uint32_t>(straight.losses[3 + i])) << "step " << i + 4;
  EXPECT_TRUE(io::load_model(o.out / "model").params == straight_params) << "final weights differ";

  // Another precision cannot continue the run exactly.
  o.precision = "fp32";
  test::expect_error("--resume: precision is \"fp32\"", [&] { train::train(ctx(), o); });
}

}  // namespace
}  // namespace vkm
