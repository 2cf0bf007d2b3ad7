// The BPE trainer: deterministic whatever the thread count, MiniMind's vocabulary layout, min_frequency,
// clear errors for bad JSONL, and merges equal to a naive trainer that recounts every pair at every step.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "model/tokenizer/pretokenize.hpp"
#include "model/tokenizer/train.hpp"

namespace vkm::tok {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path dir = fs::path(testing::TempDir()) / "train_tokenizer_test";
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << text;
  return dir / name;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Seeded mixed English / Chinese sentences, with numbers, punctuation and runs of spaces.
std::string sentence(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "the", "cat", "sat", "on", "mat", "and", "then", "there", "were", "Emma", "said", "Mr.", "Darcy",
      "床前", "明月", "光", "疑是", "地上", "霜", "举头", "望", "低头", "思故乡", "，", "。", "！", "2024",
      "7", "  ", "\n", "don't", "they're", "🙂", "x=1;", "def", "f():"};
  std::string s;
  const int n = 3 + int(rng() % 12);
  for (int i = 0; i < n; ++i) {
    const std::string& p = pieces[rng() % pieces.size()];
    if (!s.empty() && (p[0] & 0x80) == 0 && rng() % 3 != 0) s += ' ';
    s += p;
  }
  return s;
}

// JSONL with pretrain, SFT and DPO records, and a plain text file.
std::vector<fs::path> corpus(int records, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string jsonl, txt;
  for (int i = 0; i < records; ++i) {
    switch (i % 3) {
      case 0: jsonl += "{\"text\": " + json_string(sentence(rng)) + "}\n"; break;
      case 1:
        jsonl += "{\"conversations\": [{\"role\": \"user\", \"content\": " + json_string(sentence(rng)) +
                 "}, {\"role\": \"assistant\", \"content\": " + json_string(sentence(rng)) + "}]}\n";
        break;
      default:
        jsonl += "{\"chosen\": [{\"role\": \"user\", \"content\": " + json_string(sentence(rng)) +
                 "}], \"rejected\": [{\"role\": \"user\", \"content\": " + json_string(sentence(rng)) + "}]}\n";
    }
    txt += sentence(rng) + "\n";
  }
  return {write_file("corpus" + std::to_string(seed) + ".jsonl", jsonl),
          write_file("corpus" + std::to_string(seed) + ".txt", txt)};
}

// The trainer written the slow, obvious way: recount every pair of every word at every step.
struct Naive {
  std::vector<std::string> vocab;  // raw bytes (specials as they are)
  std::vector<std::pair<int, int>> merges;
};
Naive naive_train(const std::vector<std::string>& texts, int64_t vocab_size, int64_t min_frequency) {
  Naive r;
  r.vocab = {std::string(kEndOfText), std::string(kImStart), std::string(kImEnd)};
  std::vector<int> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = b;
  std::sort(bytes.begin(), bytes.end(), [](int a, int b) {
    return to_byte_level(std::string(1, char(a))) < to_byte_level(std::string(1, char(b)));
  });
  std::map<int, int> id_of_byte;
  for (int b : bytes) id_of_byte[b] = int(r.vocab.size()), r.vocab.emplace_back(1, char(b));

  std::map<std::string, int64_t> counts;
  for (const auto& t : texts) pretokenize(t, [&](std::string_view w) { ++counts[std::string(w)]; });
  std::vector<std::pair<std::vector<int>, int64_t>> words;
  for (const auto& [w, n] : counts) {
    std::vector<int> s;
    for (unsigned char c : w) s.push_back(id_of_byte[c]);
    words.emplace_back(s, n);
  }
  while (int64_t(r.vocab.size()) < vocab_size) {
    std::map<std::pair<int, int>, int64_t> pairs;
    for (const auto& [s, n] : words)
      for (size_t i = 0; i + 1 < s.size(); ++i) pairs[{s[i], s[i + 1]}] += n;
    std::pair<int, int> best{};
    int64_t best_n = 0;
    for (const auto& [p, n] : pairs)  // map order: the first of equal counts is the smallest pair
      if (n > best_n) best = p, best_n = n;
    if (best_n < std::max<int64_t>(1, min_frequency)) break;
    const std::string joined = r.vocab[size_t(best.first)] + r.vocab[size_t(best.second)];
    auto at = std::find(r.vocab.begin(), r.vocab.end(), joined);
    const int z = int(at - r.vocab.begin());
    if (at == r.vocab.end()) r.vocab.push_back(joined);
    r.merges.push_back(best);
    for (auto& [s, n] : words) {
      std::vector<int> out;
      for (size_t i = 0; i < s.size();) {
        if (i + 1 < s.size() && s[i] == best.first && s[i + 1] == best.second) out.push_back(z), i += 2;
        else out.push_back(s[i++]);
      }
      s = out;
    }
  }
  return r;
}

TEST(TrainTokenizer, SameMergesWhateverTheThreads) {
  const auto files = corpus(3000, 1);
  TrainOptions o;
  o.vocab_size = 700;
  o.threads = 1;
  const BpeModel one = train_bpe(files, o);
  const BpeModel one_again = train_bpe(files, o);
  o.threads = 4;
  const BpeModel four = train_bpe(files, o);
  EXPECT_EQ(one.vocab, one_again.vocab);
  EXPECT_EQ(one.merges, one_again.merges);
  EXPECT_EQ(one.vocab, four.vocab);
  EXPECT_EQ(one.merges, four.merges);
}

// Real mixed Chinese / English text (tools/fetch_data.sh --sample derives it from the corpus).
TEST(TrainTokenizer, RealTextSample) {
  const fs::path sample = fs::path(__FILE__).parent_path().parent_path() / "data" / "corpus_sample.jsonl";
  TrainOptions o;
  o.vocab_size = 1000;
  o.threads = 1;
  const BpeModel one = train_bpe({sample}, o);
  o.threads = 4;
  const BpeModel four = train_bpe({sample}, o);
  EXPECT_EQ(one.vocab.size(), 1000u);
  EXPECT_EQ(one.merges, four.merges);
  // Frequent Chinese characters and English words become single tokens.
  for (const char* token : {"\xe4\xb8\x8d" /* 不 */, " the", " and"})
    EXPECT_NE(std::find(one.vocab.begin(), one.vocab.end(), to_byte_level(token)), one.vocab.end()) << token;
}

TEST(TrainTokenizer, VocabularyLayout) {
  const auto files = corpus(2000, 2);
  TrainOptions o;
  o.vocab_size = 600;
  o.reserved = {"<|reserved_0|>", "<|reserved_1|>"};
  int64_t last_done = -1;
  bool counted = false;
  const BpeModel m = train_bpe(files, o, [&](const TrainProgress& p) {
    if (p.stage == "counting") counted = true;
    if (p.stage == "merging") {
      EXPECT_GT(p.done, last_done);
      last_done = p.done;
    }
  });
  EXPECT_TRUE(counted);
  ASSERT_EQ(m.vocab.size(), 600u);
  EXPECT_EQ(m.vocab[0], "<|endoftext|>");
  EXPECT_EQ(m.vocab[1], "<|im_start|>");
  EXPECT_EQ(m.vocab[2], "<|im_end|>");
  EXPECT_EQ(m.vocab[3], "<|reserved_0|>");
  EXPECT_EQ(m.vocab[4], "<|reserved_1|>");
  EXPECT_EQ(m.special, std::vector<std::string>(m.vocab.begin(), m.vocab.begin() + 5));
  // The 256 byte tokens next, sorted by code point as Hugging Face's BpeTrainer sorts its alphabet.
  EXPECT_EQ(m.vocab[5], "!");
  EXPECT_EQ(m.vocab[5 + 93], "~");
  EXPECT_EQ(m.vocab[5 + 255], "\xc5\x83");  // U+0143, the last stand-in (byte 0xAD)
  std::vector<std::string> bytes(m.vocab.begin() + 5, m.vocab.begin() + 261);
  EXPECT_TRUE(std::is_sorted(bytes.begin(), bytes.end()));
  std::sort(bytes.begin(), bytes.end());
  EXPECT_EQ(std::unique(bytes.begin(), bytes.end()), bytes.end());
  // Every merge joins two earlier tokens into one that is in the vocabulary.
  ASSERT_GE(m.merges.size(), 600u - 261u);
  for (const auto& [a, b] : m.merges)
    EXPECT_NE(std::find(m.vocab.begin(), m.vocab.end(), a + b), m.vocab.end()) << a << " + " << b;
}

TEST(TrainTokenizer, MatchesNaiveRescan) {
  std::mt19937 rng(3);
  std::string txt;
  for (int i = 0; i < 400; ++i) txt += sentence(rng) + "\n";
  // Runs of one byte exercise overlapping merges ("aaaa" -> "aa aa").
  txt += "aaaaaaa bbbbbb aaaa ab abab ababab\n";
  const fs::path file = write_file("naive.txt", txt);  // one block: the trainer sees the same one text

  for (int64_t min_frequency : {1, 5}) {
    TrainOptions o;
    o.vocab_size = 1000;  // more than the text allows: both stop when no pair is frequent enough
    o.min_frequency = min_frequency;
    const BpeModel m = train_bpe({file}, o);
    const Naive want = naive_train({txt}, o.vocab_size, min_frequency);
    ASSERT_EQ(m.merges.size(), want.merges.size()) << "min_frequency " << min_frequency;
    ASSERT_EQ(m.vocab.size(), want.vocab.size());
    for (size_t i = 0; i < want.vocab.size(); ++i)
      EXPECT_EQ(m.vocab[i], i < 3 ? want.vocab[i] : to_byte_level(want.vocab[i])) << "token " << i;
    for (size_t i = 0; i < want.merges.size(); ++i) {
      EXPECT_EQ(m.merges[i].first, m.vocab[size_t(want.merges[i].first)]) << "merge " << i;
      EXPECT_EQ(m.merges[i].second, m.vocab[size_t(want.merges[i].second)]) << "merge " << i;
    }
  }
}

TEST(TrainTokenizer, MinFrequencyStopsEarly) {
  const fs::path file = write_file("few.txt", "hello hello hello world world wide\n");
  TrainOptions o;
  o.vocab_size = 6400;
  o.min_frequency = 3;
  const BpeModel m = train_bpe({file}, o);
  // Only the pairs of " hello"/"hello" reach 3 occurrences: no merge from "world" or "wide".
  EXPECT_LT(m.vocab.size(), 6400u);
  for (const auto& [a, b] : m.merges) {
    EXPECT_EQ((a + b).find("wor"), std::string::npos);
    EXPECT_EQ((a + b).find("wi"), std::string::npos);
  }
  EXPECT_NE(std::find(m.vocab.begin(), m.vocab.end(), "hello"), m.vocab.end());
}

void expect_error(const fs::path& file, const std::string& where, const std::string& what) {
  try {
    train_bpe({file}, TrainOptions{});
    FAIL() << "no error for " << file;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(file.string() + ":" + where), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

TEST(TrainTokenizer, MalformedJsonlNamesFileAndLine) {
  expect_error(write_file("bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"broken}\n{\"text\": \"ok\"}\n"), "3:",
               "malformed JSON");
  expect_error(write_file("no_text.jsonl", "{\"text\": \"ok\"}\n{\"title\": \"x\"}\n"), "2:", "no \"text\"");
  expect_error(write_file("bad_turn.jsonl", "{\"conversations\": [{\"role\": \"user\"}]}\n"), "1:",
               "no string \"content\"");
  // Past the first block of lines, the line number is still right.
  std::string big;
  for (int i = 0; i < 60000; ++i) big += "{\"text\": \"some words to fill the first megabyte\"}\n";
  expect_error(write_file("late.jsonl", big + "[1, 2]\n"), "60001:", "expected a JSON object");
  try {
    train_bpe({"/nonexistent/corpus.jsonl"}, TrainOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.jsonl"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vkm::tok
