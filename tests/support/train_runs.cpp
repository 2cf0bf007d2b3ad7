#include "tests/support/train_runs.hpp"

#include <atomic>
#include <filesystem>

#include "model/config.hpp"

namespace vkm::test {

namespace fs = std::filesystem;

train::TrainOptions small_train_run(const TempDir& d, const std::string& data_name) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = 1200;
  c.hidden = 64, c.heads = 4, c.kv_heads = 2, c.head_dim = 16, c.ffn = 176, c.layers = 2;
  c.max_positions = 512;
  model::save_config(c, (d.path / "config.json").string());
  const fs::path data = d.path / data_name;
  if (!fs::exists(data)) fs::copy_file(data_dir() / data_name, data);

  train::TrainOptions o;
  o.data = data;
  o.tokenizer = data_dir() / "tokenizer" / "trained";
  o.config_file = d.path / "config.json";
  o.out = d.path / "run";
  o.batch = 4, o.seq = 64;
  o.lr = 3e-3;
  o.warmup_steps = 5;
  o.val_fraction = 0.05;
  o.eval_every = 0;
  o.eval_batches = 8;
  o.save_every = 0;
  o.quiet = true;
  o.precision = "fp32";
  return o;
}

train::TrainResult train_until(train::TrainOptions o, int64_t stop_after) {
  std::atomic<bool> stop{false};
  o.stop = &stop;
  o.on_step = [&](int64_t step, double) { stop = step == stop_after; };
  return train::train(ctx(), o);
}

}  // namespace vkm::test
