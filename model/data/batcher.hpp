#pragma once
// Batches of [B, T] from a TokenDataset: inputs and targets (the same tokens shifted by one) as int32 and
// a loss mask as float.
//
// Split: sample i is in the validation split when splitmix64(i ^ split_seed) < val_fraction * 2^64, so the
// split depends only on (split_seed, val_fraction, sample index): disjoint, stable across runs and
// independent of the shuffle seed.
// Order: epoch e visits the split's samples in a permutation drawn from (seed, e) (Fisher-Yates over a
// splitmix64 stream), or in file order when shuffle is false. Epochs follow each other without a gap: a
// batch may end in the next epoch.
// Pretrain (packed): the epoch's samples are concatenated, each followed by <|endoftext|> (id 0), and cut
// into consecutive windows of T + 1 tokens; row = window[0..T-1], target = window[1..T], mask 1.
// SFT (padded): one conversation per row, truncated to T + 1 tokens (truncated_samples() counts the split's
// samples that do not fit); inputs = row[0..T-1], targets = row[1..T], mask[t] = the SFT mask of the target
// token row[t+1]; positions past the end hold id 0 with mask 0.
// Cursor: (epoch, position in the epoch's order, token offset within that sample, for packing). Restoring
// a saved cursor into a batcher built with the same options continues with exactly the same batches.
#include <cstdint>
#include <vector>

#include "model/data/token_cache.hpp"

namespace vkm::data {

enum class Split { train, validation };

struct BatcherOptions {
  int batch_size = 1;
  int seq_len = 512;
  uint64_t seed = 0;           // shuffle
  bool shuffle = true;
  double val_fraction = 0.0;   // share of samples held out for validation
  uint64_t split_seed = 0x5eed5eed;
  Split split = Split::train;
};

struct Cursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // index into the epoch's order of samples
  uint64_t offset = 0;    // packing: tokens of that sample (with its separator) already used
  bool operator==(const Cursor&) const = default;
};

struct Batch {
  int batch_size = 0, seq_len = 0;
  std::vector<int32_t> inputs;   // [B, T], row-major
  std::vector<int32_t> targets;  // [B, T]
  std::vector<float> loss_mask;  // [B, T]
  Cursor start;                  // where this batch began
};

// Whether sample i of a data set is held out for validation.
bool in_validation(uint64_t i, double val_fraction, uint64_t split_seed);

class Batcher {
 public:
  Batcher(const TokenDataset& data, const BatcherOptions& options);

  Batch next();
  Cursor cursor() const { return cursor_; }
  void restore(const Cursor& c);

  size_t num_samples() const { return samples_.size(); }  // in this split
  const std::vector<uint32_t>& samples() const { return samples_; }  // dataset indices of this split
  uint64_t truncated_samples() const { return truncated_; }  // SFT: samples longer than T + 1
  // Batches that cover one epoch (pretrain: whole windows of the epoch's tokens; SFT: rows), at least 1.
  uint64_t batches_per_epoch() const;
  // The dataset index at `position` of epoch `epoch`'s order.
  uint32_t sample_at(uint64_t epoch, uint64_t position);

 private:
  void ensure_order(uint64_t epoch);
  void fill_packed(int32_t* row);
  void fill_padded(int32_t* row, float* mask_row);

  const TokenDataset* data_;
  BatcherOptions opt_;
  std::vector<uint32_t> samples_;  // dataset indices in this split, in file order
  std::vector<uint32_t> order_;    // the current epoch's permutation of samples_
  uint64_t order_epoch_ = UINT64_MAX;
  uint64_t split_tokens_ = 0;
  uint64_t truncated_ = 0;
  Cursor cursor_;
};

}  // namespace vkm::data
