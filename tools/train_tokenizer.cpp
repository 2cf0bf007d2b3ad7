// `vkmind train-tokenizer`: trains a byte-level BPE on JSONL or text files and writes tokenizer.json and
// tokenizer_config.json into the output folder.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/train.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

// One status line per stage, rewritten in place at most every half second: done/total, rate, ETA.
class ProgressLine {
 public:
  void operator()(const tok::TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    const bool new_stage = p.stage != stage_;
    if (new_stage) {
      if (!stage_.empty()) std::fputc('\n', stderr);
      stage_ = p.stage;
      stage_start_ = now;
    } else if (now - printed_ < std::chrono::milliseconds(500) && p.done < p.total) {
      return;
    }
    printed_ = now;
    const double s = std::chrono::duration<double>(now - stage_start_).count();
    const bool bytes = p.stage == "counting";
    const double scale = bytes ? 1.0 / (1 << 20) : 1.0;
    const double rate = s > 0 ? double(p.done) / s : 0.0;
    const double eta = rate > 0 ? double(p.total - p.done) / rate : 0.0;
    std::fprintf(stderr, "\r%-9s %10.1f / %.1f %s  %8.1f %s/s  %5.1f s  ETA %5.1f s   ", p.stage.c_str(),
                 double(p.done) * scale, double(p.total) * scale, bytes ? "MiB" : "merges", rate * scale,
                 bytes ? "MiB" : "merges", s, eta);
    std::fflush(stderr);
  }
  void finish() const {
    if (!stage_.empty()) std::fputc('\n', stderr);
  }

 private:
  std::string stage_;
  std::chrono::steady_clock::time_point stage_start_, printed_;
};

}  // namespace

int train_tokenizer(const TrainTokenizerOptions& o) {
  tok::TrainOptions t;
  t.vocab_size = o.vocab;
  t.min_frequency = o.min_frequency;
  t.nfkc = o.nfkc;
  t.threads = o.threads;
  for (int i = 0; i < o.reserved; ++i) t.reserved.push_back("<|reserved_" + std::to_string(i) + "|>");
  std::vector<std::filesystem::path> files(o.data.begin(), o.data.end());

  const auto t0 = std::chrono::steady_clock::now();
  ProgressLine line;
  tok::BpeModel model;
  try {
    model = tok::train_bpe(files, t, [&](const tok::TrainProgress& p) { line(p); });
  } catch (...) {
    line.finish();  // the error goes on a line of its own
    throw;
  }
  line.finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const size_t vocab = model.vocab.size(), merges = model.merges.size();
  tok::Tokenizer(std::move(model)).save(o.out);
  std::printf("trained %zu tokens (%zu merges) in %.1f s; wrote %s\n", vocab, merges, seconds,
              (std::filesystem::path(o.out) / "tokenizer.json").string().c_str());
  if (int64_t(vocab) < o.vocab)
    std::printf("note: the data gave no pair seen %lld times or more beyond these; the vocabulary is smaller "
                "than --vocab %lld\n",
                (long long)o.min_frequency, (long long)o.vocab);
  return 0;
}

}  // namespace vkm::tools
