#include "model/data/batcher.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/error.hpp"
#include "model/random.hpp"

namespace vkm::data {

using model::splitmix64;

bool in_validation(uint64_t i, double val_fraction, uint64_t split_seed) {
  if (val_fraction <= 0) return false;
  if (val_fraction >= 1) return true;
  const uint64_t h = splitmix64(i ^ splitmix64(split_seed));
  return double(h >> 11) * 0x1.0p-53 < val_fraction;
}

Batcher::Batcher(const TokenDataset& data, const BatcherOptions& opt) : data_(&data), opt_(opt) {
  if (opt.batch_size < 1 || opt.seq_len < 1) throw Error("batcher: batch size and sequence length must be positive");
  for (size_t i = 0; i < data.size(); ++i) {
    if (in_validation(i, opt.val_fraction, opt.split_seed) != (opt.split == Split::validation)) continue;
    samples_.push_back(uint32_t(i));
    split_tokens_ += data.length(i);
    if (data.length(i) > uint64_t(opt.seq_len) + 1) ++truncated_;
  }
  if (samples_.empty())
    throw Error(std::string("batcher: the ") + (opt.split == Split::validation ? "validation" : "training") +
                " split is empty (" + std::to_string(data.size()) + " samples, validation fraction " +
                std::to_string(opt.val_fraction) + ")");
}

void Batcher::ensure_order(uint64_t epoch) {
  if (order_epoch_ == epoch) return;
  order_ = samples_;
  if (opt_.shuffle) {
    uint64_t state = splitmix64(opt_.seed) ^ splitmix64(epoch * 0x2545f4914f6cdd1dull + 1);
    for (size_t i = order_.size(); i > 1; --i) {
      state = splitmix64(state);
      const size_t j = size_t((unsigned __int128)state * i >> 64);  // uniform in [0, i)
      std::swap(order_[i - 1], order_[j]);
    }
  }
  order_epoch_ = epoch;
}

uint32_t Batcher::sample_at(uint64_t epoch, uint64_t position) {
  ensure_order(epoch);
  return order_[position];
}

void Batcher::restore(const Cursor& c) {
  if (c.position >= samples_.size()) throw Error("batcher: the cursor's position is past this split's samples");
  ensure_order(c.epoch);
  if (data_->format() == Format::pretrain ? c.offset > data_->length(order_[c.position]) : c.offset != 0)
    throw Error("batcher: the cursor's offset is past its sample");
  cursor_ = c;
}

uint64_t Batcher::batches_per_epoch() const {
  const uint64_t B = uint64_t(opt_.batch_size);
  const uint64_t rows = data_->format() == Format::sft ? samples_.size()
                                                      : (split_tokens_ + samples_.size()) / uint64_t(opt_.seq_len + 1);
  return std::max<uint64_t>(1, rows / B);
}

// T + 1 tokens of the endless stream of epochs.
void Batcher::fill_packed(int32_t* row) {
  const uint64_t want = uint64_t(opt_.seq_len) + 1;
  for (uint64_t got = 0; got < want;) {
    ensure_order(cursor_.epoch);
    const uint32_t s = order_[cursor_.position];
    const uint64_t len = data_->length(s);
    if (cursor_.offset < len) {
      const uint64_t n = std::min(want - got, len - cursor_.offset);
      data_->read_tokens(s, cursor_.offset, n, row + got);
      got += n;
      cursor_.offset += n;
    }
    if (got < want && cursor_.offset == len) {
      row[got++] = 0;  // <|endoftext|> between samples
      ++cursor_.offset;
    }
    if (cursor_.offset == len + 1) {
      cursor_.offset = 0;
      if (++cursor_.position == order_.size()) cursor_.position = 0, ++cursor_.epoch;
    }
  }
}

void Batcher::fill_padded(int32_t* row, float* mask_row) {
  ensure_order(cursor_.epoch);
  const uint32_t s = order_[cursor_.position];
  const uint64_t T1 = uint64_t(opt_.seq_len) + 1;
  const uint64_t n = std::min(T1, data_->length(s));
  std::fill(row, row + T1, 0);
  data_->read_tokens(s, 0, n, row);
  const auto m = data_->mask(s);
  for (uint64_t t = 0; t < uint64_t(opt_.seq_len); ++t) mask_row[t] = t + 1 < n && !m.empty() ? float(m[t + 1]) : 0.0f;
  cursor_.offset = 0;
  if (++cursor_.position == order_.size()) cursor_.position = 0, ++cursor_.epoch;
}

Batch Batcher::next() {
  const int B = opt_.batch_size, T = opt_.seq_len;
  Batch b;
  b.batch_size = B;
  b.seq_len = T;
  b.start = cursor_;
  b.inputs.resize(size_t(B) * T);
  b.targets.resize(size_t(B) * T);
  b.loss_mask.resize(size_t(B) * T);
  std::vector<int32_t> row(size_t(T) + 1);
  for (int r = 0; r < B; ++r) {
    float* mask_row = b.loss_mask.data() + size_t(r) * T;
    if (data_->format() == Format::sft) {
      fill_padded(row.data(), mask_row);
    } else {
      fill_packed(row.data());
      std::fill(mask_row, mask_row + T, 1.0f);
    }
    std::copy(row.begin(), row.end() - 1, b.inputs.begin() + size_t(r) * T);
    std::copy(row.begin() + 1, row.end(), b.targets.begin() + size_t(r) * T);
  }
  return b;
}

}  // namespace vkm::data
