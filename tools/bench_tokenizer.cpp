// `vkmind bench tokenizer`: trains a byte-level BPE on a corpus (time, peak memory), then encodes the same
// corpus with it on one thread and on all (MB/s, bytes per token) and checks that every text decodes back.
// tools/bench_sentencepiece.sh measures Debian's sentencepiece the same way (docs/BENCHMARKS.md).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/train.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

struct BenchTokenizerOptions {
  std::vector<std::string> data;
  int64_t vocab = 6400;
  int threads = 0;
  std::string out;  // where the trained tokenizer goes (default: a temporary folder)
};

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

// The texts to encode: "text" (and SFT "content") fields of JSONL files, lines of other files.
std::vector<std::string> load_texts(const std::vector<std::string>& files) {
  std::vector<std::string> texts;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error("bench tokenizer: cannot open " + f);
    const std::string ext = fs::path(f).extension().string();
    const bool jsonl = ext == ".jsonl" || ext == ".json";
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (!jsonl) {
        texts.push_back(line + "\n");
        continue;
      }
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded()) throw Error(f + ":" + std::to_string(n) + ": malformed JSON");
      if (j.contains("text")) texts.push_back(j["text"].get<std::string>());
      if (j.contains("conversations"))
        for (const auto& turn : j["conversations"]) texts.push_back(turn.value("content", ""));
    }
  }
  return texts;
}

struct EncodeRun {
  double seconds;
  int64_t tokens;
  size_t mismatches;  // texts that did not decode to themselves
};

// A fresh load per run, so no run starts with a word cache the previous one filled.
EncodeRun encode_all(const fs::path& dir, const std::vector<std::string_view>& texts, int threads) {
  const tok::Tokenizer t = tok::Tokenizer::load(dir);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = t.encode_batch(texts, threads);
  EncodeRun r{seconds_since(t0), 0, 0};
  for (size_t i = 0; i < ids.size(); ++i) {
    r.tokens += int64_t(ids[i].size());
    if (t.decode(ids[i]) != texts[i]) ++r.mismatches;
  }
  return r;
}


int bench_tokenizer(const BenchTokenizerOptions& o) {
  const int cores = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  fs::path dir = o.out.empty() ? fs::temp_directory_path() / ("vkmind-bench-tokenizer-" + std::to_string(getpid()))
                               : fs::path(o.out);
  int64_t corpus_bytes = 0;
  for (const auto& f : o.data) corpus_bytes += int64_t(fs::file_size(f));

  tok::TrainOptions t;
  t.vocab_size = o.vocab;
  t.threads = cores;
  const double rss_before = peak_rss_mib();
  auto t0 = std::chrono::steady_clock::now();
  tok::BpeModel model = tok::train_bpe({o.data.begin(), o.data.end()}, t);
  const double train_s = seconds_since(t0);
  const double train_rss = peak_rss_mib();
  const size_t vocab = model.vocab.size();
  tok::Tokenizer(std::move(model)).save(dir);

  const std::vector<std::string> texts = load_texts(o.data);
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  int64_t text_bytes = 0;
  for (const auto& s : texts) text_bytes += int64_t(s.size());
  const EncodeRun one = encode_all(dir, views, 1);
  const EncodeRun all = encode_all(dir, views, cores);
  if (o.out.empty()) fs::remove_all(dir);

  const double mb = double(text_bytes) / 1e6;
  std::printf("corpus: %.1f MB in %zu files; %zu texts, %.1f MB of text\n", double(corpus_bytes) / 1e6,
              o.data.size(), texts.size(), mb);
  std::printf("train:  %.2f s on %d threads, vocab %zu, peak RSS %.0f MiB (%.0f MiB before training)\n", train_s,
              cores, vocab, train_rss, rss_before);
  std::printf("encode: 1 thread %.2f s = %.2f MB/s; %d threads %.2f s = %.2f MB/s\n", one.seconds,
              mb / one.seconds, cores, all.seconds, mb / all.seconds);
  std::printf("tokens: %lld, %.3f bytes/token; texts not decoding to themselves: %zu\n", (long long)one.tokens,
              double(text_bytes) / double(one.tokens), one.mismatches + all.mismatches);
  return one.mismatches + all.mismatches == 0 && one.tokens == all.tokens ? 0 : 1;
}

}  // namespace

void add_bench_tokenizer(CLI::App& bench, const Common&, int& exit_code) {
  auto o = std::make_shared<BenchTokenizerOptions>();
  CLI::App* sub = bench.add_subcommand("tokenizer", "Tokenizer training time, peak memory, encoding MB/s");
  sub->add_option("--data", o->data, "Corpus files (JSONL or text)")->required()->check(CLI::ExistingFile);
  sub->add_option("--vocab", o->vocab, "Vocabulary size")->capture_default_str();
  sub->add_option("--threads", o->threads, "Threads for training and parallel encoding (0: all cores)");
  sub->add_option("--out", o->out, "Keep the trained tokenizer in this folder");
  on_run(sub, exit_code, [o] { return bench_tokenizer(*o); });
}

}  // namespace vkm::tools
