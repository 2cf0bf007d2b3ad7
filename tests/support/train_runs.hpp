#pragma once
// What the trainer's tests share: a small model over the committed data, and a run stopped part-way.
#include <cstdint>
#include <string>

#include "model/train/trainer.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::test {

// A run of a small model (hidden 64, 2 layers, GQA 4/2, vocab 1200 from the committed tokenizer) on the
// committed tests/data/DATA_NAME, copied into d (so its token cache is written there) with config.json beside
// it, into d/run: batch 4 x 64, lr 3e-3 after 5 warmup steps, 5 % held out, fp32, quiet. Callable again on the
// same folder, for another data file or run.
train::TrainOptions small_train_run(const TempDir& d, const std::string& data_name);

// Trains `o` and stops it after step `stop_after`, as Ctrl-C would: a checkpoint, `interrupted` set.
train::TrainResult train_until(train::TrainOptions o, int64_t stop_after);

}  // namespace vkm::test
