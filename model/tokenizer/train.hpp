#pragma once
// Training a byte-level BPE from text: words counted in parallel, merges by incremental pair counts and a
// priority queue.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace vkm::tok {

struct TrainOptions {
  int64_t vocab_size = 6400;           // special + reserved + 256 bytes + merges
  int64_t min_frequency = 2;           // a pair seen fewer times is never merged
  std::vector<std::string> reserved;   // extra special tokens after the three of MiniMind
  bool nfkc = false;
  int threads = 0;                     // 0: all cores
};

struct TrainProgress {
  std::string stage;  // "counting", "merging"
  int64_t done, total;
};

// Texts from JSONL (pretrain {"text"}, SFT {"conversations": [{"content"}]}, DPO chosen/rejected) or plain
// text files, streamed in constant memory. Throws vkm::Error naming file:line for a malformed line.
BpeModel train_bpe(const std::vector<std::filesystem::path>& files, const TrainOptions& options,
                   const std::function<void(const TrainProgress&)>& progress = {});

}  // namespace vkm::tok
