// Byte-level BPE training in two stages.
//
// Counting: one reader thread streams the files in blocks of whole lines (constant memory: a bounded queue
// of blocks), and every core pre-tokenizes blocks into its own hash map of word -> count. Words are kept
// as raw bytes (their byte-level spelling is only needed for the vocabulary written out).
//
// Merging: the distinct words become symbol sequences in one flat array, with the exact count of every
// adjacent pair (weighted by word count), an index pair -> words that may contain it, and a max-heap of
// (count, pair). Each merge pops the best pair, rewrites only the words in its index, and adjusts the
// counts of the pairs around each rewritten occurrence. A pair whose count rose gets a fresh heap entry;
// one whose count dropped leaves a stale entry, found when popped (its count differs from the current
// one) and pushed back with the current count: lazy invalidation, never a rescan.
//
// The result matches Hugging Face's BpeTrainer with initial_alphabet = ByteLevel.alphabet(), which is how
// MiniMind trained its tokenizer:
//  - ids: special tokens, then reserved ones, then the 256 byte tokens sorted by the code point of their
//    byte-level character ("!" first, as BpeTrainer sorts its alphabet), then one id per merge;
//  - the best pair is the one with the highest count; ties go to the smallest (left id, right id);
//  - a merge whose joined string is already a token reuses that token's id (as BpeTrainer does);
//  - training stops at vocab_size tokens, or when the best count is below min_frequency.
#include "model/tokenizer/train.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/tokenizer/pretokenize.hpp"

namespace vkm::tok {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Hash map keyed by std::string that can be probed with a string_view (no allocation per lookup).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WordCounts = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

// A piece of one input file: whole JSONL lines (first_line numbers the first), or a block of plain text.
struct Block {
  const fs::path* file = nullptr;
  bool jsonl = false;
  int64_t first_line = 1;
  std::string text;
};

bool is_jsonl(const fs::path& f) {
  const std::string ext = f.extension().string();
  return ext == ".jsonl" || ext == ".json";
}

// Every text of one JSONL record: pretrain {"text"}, SFT {"conversations"}, DPO {"chosen", "rejected"}
// (lists of {"role", "content"}). Returns what is wrong, or an empty string.
template <class F>
std::string texts_of_record(const json& j, const F& text) {
  if (!j.is_object()) return "expected a JSON object";
  bool found = false;
  if (auto it = j.find("text"); it != j.end()) {
    if (!it->is_string()) return "\"text\" is not a string";
    text(it->get_ref<const std::string&>());
    found = true;
  }
  for (const char* key : {"conversations", "chosen", "rejected"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_array()) return std::string("\"") + key + "\" is not a list";
    for (const json& turn : *it) {
      auto c = turn.is_object() ? turn.find("content") : turn.end();
      if (!turn.is_object() || c == turn.end() || !c->is_string())
        return std::string("an entry of \"") + key + "\" has no string \"content\"";
      text(c->get_ref<const std::string&>());
    }
    found = true;
  }
  return found ? "" : "no \"text\", \"conversations\", \"chosen\" or \"rejected\" field";
}

void count_text(std::string_view text, bool normalize, WordCounts& counts) {
  std::string normalized;
  if (normalize) text = normalized = nfkc(text);
  pretokenize(text, [&](std::string_view word) {
    auto it = counts.find(word);
    if (it == counts.end()) it = counts.emplace(std::string(word), 0).first;
    ++it->second;
  });
}

void count_block(const Block& b, bool normalize, WordCounts& counts) {
  if (!b.jsonl) return count_text(b.text, normalize, counts);
  int64_t line = b.first_line;
  for (size_t pos = 0; pos < b.text.size(); ++line) {
    size_t end = b.text.find('\n', pos);
    if (end == std::string::npos) end = b.text.size();
    std::string_view s(b.text.data() + pos, end - pos);
    pos = end + 1;
    if (s.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    std::string what;
    try {
      what = texts_of_record(json::parse(s), [&](const std::string& t) { count_text(t, normalize, counts); });
    } catch (const json::exception& e) {
      what = std::string("malformed JSON: ") + e.what();
    }
    if (!what.empty()) throw Error(b.file->string() + ":" + std::to_string(line) + ": " + what);
  }
}

// Blocks from the reader to the counting threads; at most `capacity` wait, so memory stays constant.
class BlockQueue {
 public:
  explicit BlockQueue(size_t capacity) : capacity_(capacity) {}
  // Returns false once the consumers have failed (nothing more is wanted).
  bool push(Block b) {
    std::unique_lock lock(m_);
    not_full_.wait(lock, [&] { return q_.size() < capacity_ || failed_; });
    if (failed_) return false;
    q_.push_back(std::move(b));
    not_empty_.notify_one();
    return true;
  }
  bool pop(Block& b) {
    std::unique_lock lock(m_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    b = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(m_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void fail() {
    std::lock_guard lock(m_);
    failed_ = closed_ = true;
    q_.clear();
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  size_t capacity_;
  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Block> q_;
  bool closed_ = false, failed_ = false;
};

constexpr size_t kBlockBytes = 1 << 20;

// Reads `file` in blocks ending at a line break (plain text: also at kBlockBytes when a line is longer;
// JSONL lines are never cut). Returns false when the queue no longer takes blocks.
bool read_file(const fs::path& file, BlockQueue& queue, int64_t& bytes_read,
               const std::function<void(int64_t)>& on_bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("train-tokenizer: cannot open " + file.string());
  const bool jsonl = is_jsonl(file);
  std::string pending;
  int64_t line = 1;
  std::vector<char> buf(kBlockBytes);
  while (true) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const size_t got = size_t(in.gcount());
    const bool eof = got == 0;
    pending.append(buf.data(), got);
    bytes_read += int64_t(got);
    size_t cut = eof ? pending.size() : pending.rfind('\n');
    if (cut == std::string::npos) {
      if (jsonl || pending.size() < kBlockBytes) continue;
      cut = pending.size();
    } else if (!eof) {
      ++cut;  // keep the line break with its line
    }
    if (cut > 0) {
      Block b{&file, jsonl, line, pending.substr(0, cut)};
      line += std::count(b.text.begin(), b.text.end(), '\n');
      pending.erase(0, cut);
      if (!queue.push(std::move(b))) return false;
      on_bytes(bytes_read);
    }
    if (eof) return true;
  }
}

WordCounts count_words(const std::vector<fs::path>& files, const TrainOptions& o, int threads,
                       const std::function<void(const TrainProgress&)>& progress) {
  int64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) throw Error("train-tokenizer: cannot read " + f.string() + ": " + ec.message());
    total += int64_t(size);
  }
  BlockQueue queue(size_t(2 * threads));
  std::vector<WordCounts> counts(static_cast<size_t>(threads));
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      Block b;
      try {
        while (queue.pop(b)) count_block(b, o.nfkc, counts[size_t(t)]);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        queue.fail();
      }
    });
  int64_t bytes = 0;
  try {
    for (const auto& f : files)
      if (!read_file(f, queue, bytes, [&](int64_t done) {
            if (progress) progress({"counting", done, total});
          }))
        break;
  } catch (...) {
    queue.fail();
    for (auto& w : workers) w.join();
    throw;
  }
  queue.close();
  for (auto& w : workers) w.join();
  if (error) std::rethrow_exception(error);

  // Sum into the largest map, freeing each other map as it is consumed.
  std::sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (size_t t = 1; t < counts.size(); ++t) {
    for (auto& [word, n] : counts[t]) counts[0][word] += n;
    WordCounts().swap(counts[t]);
  }
  return std::move(counts[0]);
}

using Pair = uint64_t;  // (left id << 32) | right id: ordering the keys orders the pairs by (left, right)
Pair pair_of(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t left_of(Pair p) { return int32_t(p >> 32); }
int32_t right_of(Pair p) { return int32_t(p & 0xffffffffu); }

struct HeapEntry {
  int64_t count;
  Pair pair;
  // std::priority_queue pops the greatest: the highest count, then the smallest pair.
  bool operator<(const HeapEntry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
};

// The distinct words as symbol sequences: word w is symbols[start[w], start[w] + length[w]).
struct Words {
  std::vector<int32_t> symbols;
  std::vector<uint64_t> start;
  std::vector<uint32_t> length;
  std::vector<int64_t> count;
};

}  // namespace

BpeModel train_bpe(const std::vector<fs::path>& files, const TrainOptions& o,
                   const std::function<void(const TrainProgress&)>& progress) {
  if (files.empty()) throw Error("train-tokenizer: no input files");
  std::vector<std::string> special = {std::string(kEndOfText), std::string(kImStart), std::string(kImEnd)};
  special.insert(special.end(), o.reserved.begin(), o.reserved.end());
  const int64_t base = int64_t(special.size()) + 256;
  if (o.vocab_size < base)
    throw Error("train-tokenizer: --vocab " + std::to_string(o.vocab_size) + " is below the " +
                std::to_string(base) + " special and byte tokens");
  const int threads = o.threads > 0 ? o.threads : int(std::max(1u, std::thread::hardware_concurrency()));

  // Tokens as raw bytes; the byte tokens in the code point order of their byte-level characters (comparing
  // UTF-8 bytewise compares code points).
  std::vector<std::string> token(special.begin(), special.end());
  std::vector<std::string> byte_level(256);
  for (int b = 0; b < 256; ++b) byte_level[size_t(b)] = to_byte_level(std::string(1, char(b)));
  std::vector<int> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[size_t(b)] = b;
  std::sort(bytes.begin(), bytes.end(), [&](int a, int b) { return byte_level[size_t(a)] < byte_level[size_t(b)]; });
  std::vector<int32_t> id_of_byte(256);
  for (int b : bytes) {
    id_of_byte[size_t(b)] = int32_t(token.size());
    token.emplace_back(1, char(b));
  }
  std::unordered_map<std::string, int32_t> id_of_token;
  for (size_t i = special.size(); i < token.size(); ++i) id_of_token.emplace(token[i], int32_t(i));

  // Words with a single byte hold no pair and are left out.
  Words words;
  {
    WordCounts counts = count_words(files, o, threads, progress);
    size_t total = 0;
    for (const auto& [w, n] : counts)
      if (w.size() > 1) total += w.size();
    words.symbols.reserve(total);
    for (const auto& [w, n] : counts) {
      if (w.size() < 2) continue;
      words.start.push_back(words.symbols.size());
      words.length.push_back(uint32_t(w.size()));
      words.count.push_back(n);
      for (unsigned char c : w) words.symbols.push_back(id_of_byte[c]);
    }
  }

  // Initial pair counts and index, over byte ids only: dense tables.
  const size_t nb = size_t(base);
  std::vector<int64_t> dense_count(nb * nb, 0);
  std::vector<uint32_t> dense_words(nb * nb, 0), last_word(nb * nb, UINT32_MAX);
  for (uint32_t w = 0; w < words.length.size(); ++w) {
    const int32_t* s = &words.symbols[words.start[w]];
    for (uint32_t i = 0; i + 1 < words.length[w]; ++i) {
      const size_t k = size_t(s[i]) * nb + size_t(s[i + 1]);
      dense_count[k] += words.count[w];
      if (last_word[k] != w) last_word[k] = w, ++dense_words[k];
    }
  }
  struct PairState {
    int64_t count = 0;
    bool grown = false;           // in `grown` already, during one merge
    std::vector<uint32_t> words;  // words that may hold the pair (stale entries are skipped when merging)
  };
  std::unordered_map<Pair, PairState> pairs;  // one map: a pair's count and words are looked up together
  std::priority_queue<HeapEntry> heap;
  for (size_t k = 0; k < nb * nb; ++k)
    if (dense_count[k] > 0) {
      const Pair p = pair_of(int32_t(k / nb), int32_t(k % nb));
      pairs[p].count = dense_count[k];
      pairs[p].words.reserve(dense_words[k]);
      heap.push({dense_count[k], p});
    }
  std::fill(last_word.begin(), last_word.end(), UINT32_MAX);
  for (uint32_t w = 0; w < words.length.size(); ++w) {
    const int32_t* s = &words.symbols[words.start[w]];
    for (uint32_t i = 0; i + 1 < words.length[w]; ++i) {
      const size_t k = size_t(s[i]) * nb + size_t(s[i + 1]);
      if (last_word[k] != w) last_word[k] = w, pairs[pair_of(s[i], s[i + 1])].words.push_back(w);
    }
  }
  std::vector<int64_t>().swap(dense_count);
  std::vector<uint32_t>().swap(dense_words);
  std::vector<uint32_t>().swap(last_word);

  BpeModel model;
  model.special = special;
  model.nfkc = o.nfkc;
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int64_t min_count = std::max<int64_t>(1, o.min_frequency);
  const int64_t target_merges = o.vocab_size - base;
  std::vector<Pair> grown;  // pairs whose count rose in this merge: they get a fresh heap entry
  while (int64_t(token.size()) < o.vocab_size && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const auto found = pairs.find(top.pair);
    const int64_t current = found == pairs.end() ? 0 : found->second.count;
    if (current != top.count) {  // stale: the count dropped since this entry was pushed
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (top.count < min_count) break;

    const int32_t a = left_of(top.pair), b = right_of(top.pair);
    std::string joined = token[size_t(a)] + token[size_t(b)];
    auto [it, added] = id_of_token.emplace(joined, int32_t(token.size()));
    const int32_t z = it->second;
    if (added) token.push_back(std::move(joined));
    merges.emplace_back(a, b);

    const std::vector<uint32_t> list = std::move(found->second.words);
    grown.clear();
    for (uint32_t w : list) {
      int32_t* s = &words.symbols[words.start[w]];
      const uint32_t n = words.length[w];
      const int64_t c = words.count[w];
      auto add = [&](int32_t x, int32_t y, int64_t delta) {
        const Pair p = pair_of(x, y);
        PairState& ps = pairs[p];
        ps.count += delta;
        if (delta > 0) {
          if (ps.words.empty() || ps.words.back() != w) ps.words.push_back(w);
          if (!ps.grown) ps.grown = true, grown.push_back(p);
        }
      };
      // Merge left to right in place (the write position never passes the read position). Each merge
      // changes the pairs with the symbol before (already written, maybe a merged z: "a a a a" gives
      // "z z") and the one after (not yet read); (a, b) itself is dropped whole below.
      uint32_t out = 0;
      for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
          if (out > 0) add(s[out - 1], a, -c), add(s[out - 1], z, c);
          if (i + 2 < n) add(b, s[i + 2], -c), add(z, s[i + 2], c);
          s[out++] = z;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      words.length[w] = out;
    }
    pairs.erase(top.pair);  // every occurrence was merged
    for (Pair p : grown) {
      PairState& ps = pairs[p];
      ps.grown = false;
      if (ps.count > 0) heap.push({ps.count, p});
    }
    if (progress) progress({"merging", int64_t(merges.size()), target_merges});
  }

  model.vocab.reserve(token.size());
  for (size_t i = 0; i < token.size(); ++i)
    model.vocab.push_back(i < special.size() ? token[i] : to_byte_level(token[i]));
  model.merges.reserve(merges.size());
  for (auto [a, b] : merges) model.merges.emplace_back(model.vocab[size_t(a)], model.vocab[size_t(b)]);
  return model;
}

}  // namespace vkm::tok
