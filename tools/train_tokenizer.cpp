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

struct TrainTokenizerOptions {
  std::vector<std::string> data;  // JSONL (.jsonl, .json) or plain text files
  std::string out;
  int64_t vocab = 6400, min_frequency = 2;
  int reserved = 0;  // <|reserved_0|>... after the three special tokens
  bool nfkc = false;
  int threads = 0;   // 0: all cores
};

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

}  // namespace

void add_train_tokenizer(CLI::App& app, const Common&, int& exit_code) {
  auto o = std::make_shared<TrainTokenizerOptions>();
  CLI::App* sub = app.add_subcommand("train-tokenizer", "Train a byte-level BPE tokenizer (Hugging Face tokenizer.json)");
  sub->add_option("--data", o->data, "JSONL (text, conversations, chosen/rejected) or plain text files")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("--out", o->out, "Folder for tokenizer.json and tokenizer_config.json")->required();
  sub->add_option("--vocab", o->vocab, "Vocabulary size, special and byte tokens included")->capture_default_str();
  sub->add_option("--min-frequency", o->min_frequency, "Never merge a pair seen fewer times")->capture_default_str();
  sub->add_option("--reserved", o->reserved, "Reserved special tokens after the three of ChatML")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--nfkc", o->nfkc, "NFKC-normalize text before pre-tokenization");
  sub->add_option("--threads", o->threads, "Counting threads (0: all cores)")->check(CLI::NonNegativeNumber);
  on_run(sub, exit_code, [o] { return train_tokenizer(*o); });
}

}  // namespace vkm::tools
