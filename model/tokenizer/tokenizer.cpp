// Byte-level BPE encoding and decoding as Hugging Face tokenizers does it, and tokenizer.json in and out.
//
// Encoding: added tokens (special or not) are found first, leftmost-longest as tokenizers' Aho-Corasick
// matcher finds them, and are never split; each stretch between them is normalized (NFC/NFKC if the file
// says so), pre-tokenized, and every piece is merged as tokenizers' BPE does: repeatedly the adjacent pair of
// lowest rank, the leftmost first among equals. Pieces recur, so their ids are cached.
// Differences we accept: an added token marked "normalized" is matched in the text before normalization
// (the same thing when there is no normalizer, as in MiniMind's, GPT-2's and Qwen2's files).
#include "model/tokenizer/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <fstream>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/tokenizer/pretokenize.hpp"
#include "model/tokenizer/utf8.hpp"

namespace vkm::tok {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct StringHash {
  using is_transparent = void;  // lookups by string_view without building a string
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct PairHash {
  size_t operator()(uint64_t k) const {  // ids are small and dense: mix before bucketing
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    return k ^ (k >> 33);
  }
};
uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

struct Merge {
  int32_t rank, id;
};

// Piece -> ids, in shards so that encode_batch's threads rarely wait on each other. Bounded: once a shard
// is full it stops growing (real text's frequent words arrive early).
class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 64;

  bool find(std::string_view word, std::vector<int32_t>& out) const {
    Shard& s = shard(word);
    std::shared_lock lock(s.mutex);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void insert(std::string_view word, std::span<const int32_t> ids) const {
    Shard& s = shard(word);
    std::unique_lock lock(s.mutex);
    if (s.map.size() < kPerShard) s.map.try_emplace(std::string(word), ids.begin(), ids.end());
  }

 private:
  static constexpr size_t kShards = 64, kPerShard = 4096;
  struct Shard {
    std::shared_mutex mutex;
    StringMap<std::vector<int32_t>> map;
  };
  Shard& shard(std::string_view word) const { return shards_[StringHash{}(word) % kShards]; }
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace

struct Tokenizer::Impl {
  struct Added {
    std::string content;
    int32_t id;
  };

  BpeModel model;
  StringMap<int32_t> ids;                                 // token string -> id
  std::array<int32_t, 256> byte_id;                       // byte -> id of its byte-level token
  std::unordered_map<uint64_t, Merge, PairHash> merges;   // (left id, right id) -> rank and merged id
  std::vector<std::string> bytes;                         // id -> what it decodes to
  std::vector<Added> added;                               // special and other added tokens, longest first
  std::array<bool, 256> added_start{};                    // bytes an added token can start with
  Pretokenizer splitter;                                  // ByteLevel's regex, or the file's Split regex
  WordCache cache;

  explicit Impl(BpeModel m);
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  void encode_segment(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge(std::string_view word, std::vector<int32_t>& out) const;
};

Tokenizer::Impl::Impl(BpeModel m)
    : model(std::move(m)),
      splitter(model.split_pattern.empty() ? kByteLevelPattern : std::string_view(model.split_pattern)) {
  const auto& vocab = model.vocab;
  for (size_t i = 0; i < vocab.size(); ++i) {
    auto [it, fresh] = ids.try_emplace(vocab[i], int32_t(i));
    if (!fresh) {
      throw Error("token \"" + vocab[i] + "\" has two ids, " + std::to_string(it->second) + " and " +
                  std::to_string(i));
    }
  }
  for (const auto* list : {&model.special, &model.added}) {
    for (const auto& content : *list) {
      auto it = ids.find(content);
      if (it == ids.end()) throw Error("added token \"" + content + "\" is not in the vocabulary");
      added.push_back({content, it->second});
      added_start[static_cast<unsigned char>(content[0])] = true;
    }
  }
  std::stable_sort(added.begin(), added.end(),
                   [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });

  // Added tokens decode to their content, the others from the byte-level alphabet.
  std::vector<bool> is_added(vocab.size());
  for (const auto& a : added) is_added[size_t(a.id)] = true;
  bytes.resize(vocab.size());
  for (size_t i = 0; i < vocab.size(); ++i) bytes[i] = is_added[i] ? vocab[i] : from_byte_level(vocab[i]);

  for (int b = 0; b < 256; ++b) {
    auto it = ids.find(to_byte_level(std::string(1, char(b))));
    if (it == ids.end()) throw Error("the vocabulary lacks the byte-level token of byte " + std::to_string(b));
    byte_id[size_t(b)] = it->second;
  }

  merges.reserve(model.merges.size());
  for (size_t r = 0; r < model.merges.size(); ++r) {
    const auto& [a, b] = model.merges[r];
    auto name = [&] { return "merge " + std::to_string(r) + " \"" + a + " " + b + "\""; };
    auto ia = ids.find(a), ib = ids.find(b), iab = ids.find(a + b);
    if (ia == ids.end() || ib == ids.end()) throw Error(name() + " names a token not in the vocabulary");
    if (iab == ids.end()) throw Error(name() + ": \"" + a + b + "\" is not in the vocabulary");
    merges[pair_key(ia->second, ib->second)] = {int32_t(r), iab->second};  // a repeated pair: the last wins, as in tokenizers
  }
}

void Tokenizer::Impl::encode(std::string_view text, std::vector<int32_t>& out) const {
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!added_start[static_cast<unsigned char>(text[i])]) continue;
    for (const auto& a : added) {
      if (text.substr(i).starts_with(a.content)) {
        encode_segment(text.substr(start, i - start), out);
        out.push_back(a.id);
        i += a.content.size() - 1;
        start = i + 1;
        break;
      }
    }
  }
  encode_segment(text.substr(start), out);
}

void Tokenizer::Impl::encode_segment(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (model.nfkc) text = normalized = nfkc(text);
  else if (model.nfc) text = normalized = nfc(text);

  // ByteLevel's add_prefix_space applies to what ByteLevel is given: the whole stretch when it splits by its
  // own regex, each piece of the Split before it otherwise.
  auto word = [&](std::string_view piece) {
    if (!model.add_prefix_space || piece.starts_with(' ')) return encode_word(piece, out);
    encode_word(" " + std::string(piece), out);
  };
  if (model.split_pattern.empty() && model.add_prefix_space && !text.starts_with(' ')) {
    const std::string prefixed = " " + std::string(text);
    splitter.split(prefixed, [&](std::string_view piece) { encode_word(piece, out); });
  } else if (model.split_pattern.empty()) {
    splitter.split(text, [&](std::string_view piece) { encode_word(piece, out); });
  } else {
    splitter.split(text, word);
  }
}

void Tokenizer::Impl::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const bool cacheable = word.size() <= WordCache::kMaxWordBytes;
  if (cacheable && cache.find(word, out)) return;
  const size_t first = out.size();
  auto whole = model.ignore_merges ? ids.find(to_byte_level(word)) : ids.end();
  if (whole != ids.end()) out.push_back(whole->second);
  else merge(word, out);
  if (cacheable) cache.insert(word, std::span(out).subspan(first));
}

// tokenizers' BPE: symbols in a linked list, candidate pairs in a min-heap by (rank, position); an entry is
// stale once either side has been merged into something else.
void Tokenizer::Impl::merge(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id, prev, next;  // id -1: merged into its left neighbour
  };
  struct Candidate {
    int32_t rank, pos, left, right;  // the pair (left, right) of ids starting at symbol `pos`
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int32_t n = int32_t(word.size());
  std::vector<Symbol> sym(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) sym[size_t(i)] = {byte_id[static_cast<unsigned char>(word[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1};

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int32_t pos) {
    if (pos < 0 || sym[size_t(pos)].next < 0) return;
    const int32_t l = sym[size_t(pos)].id, r = sym[size_t(sym[size_t(pos)].next)].id;
    auto it = merges.find(pair_key(l, r));
    if (it != merges.end()) heap.push({it->second.rank, pos, l, r});
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[size_t(c.pos)];
    if (left.id != c.left || left.next < 0 || sym[size_t(left.next)].id != c.right) continue;  // stale
    Symbol& right = sym[size_t(left.next)];
    left.id = merges.at(pair_key(c.left, c.right)).id;
    left.next = right.next;
    if (right.next >= 0) sym[size_t(right.next)].prev = c.pos;
    right.id = -1;
    consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0 && n > 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

Tokenizer::Tokenizer(BpeModel model) : impl_(std::make_shared<Impl>(std::move(model))) {}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  impl_->encode(text, out);
  return out;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(std::span<const std::string_view> texts,
                                                          int threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  const size_t workers = std::min<size_t>(texts.size(), threads > 0 ? size_t(threads)
                                                                    : std::max(1u, std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    try {
      for (size_t i; (i = next.fetch_add(1)) < texts.size();) impl_->encode(texts[i], out[i]);
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> pool;
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    work();
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || size_t(id) >= impl_->bytes.size()) {
      throw Error("decode: id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(impl_->bytes.size()) + " tokens");
    }
    out += impl_->bytes[size_t(id)];
  }
  return out;
}

const BpeModel& Tokenizer::model() const { return impl_->model; }
int32_t Tokenizer::vocab_size() const { return int32_t(impl_->model.vocab.size()); }

int32_t Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->ids.find(token);
  return it == impl_->ids.end() ? -1 : it->second;
}

std::string StreamDecoder::push(int32_t id) {
  const int32_t one[] = {id};
  pending_ += tokenizer_->decode(one);
  size_t ready = 0;
  while (ready < pending_.size()) {
    size_t subpart;
    const size_t n = utf8_char(pending_, ready, &subpart);
    if (n) { ready += n; continue; }
    const unsigned lead = static_cast<unsigned char>(pending_[ready]);
    if (ready + subpart == pending_.size() && lead >= 0xC2 && lead <= 0xF4) break;  // cut short: wait
    ready += subpart;  // can never become a character
  }
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() { return std::exchange(pending_, {}); }

// ---- tokenizer.json ----

namespace {

const json& need(const json& j, const char* key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw Error("\"" + (where.empty() ? "" : where + ".") + key + "\" is missing");
  }
  return j[key];
}

std::string type_of(const json& j, const std::string& where) {
  const json& t = need(j, "type", where);
  if (!t.is_string()) throw Error("\"" + where + ".type\" is not a string");
  return t.get<std::string>();
}

bool flag(const json& j, const char* key, bool fallback) {
  return j.contains(key) && !j[key].is_null() ? j[key].get<bool>() : fallback;
}

void read_normalizer(const json& n, BpeModel& m) {
  if (n.is_null()) return;
  const std::string type = type_of(n, "normalizer");
  if (type == "NFKC") m.nfkc = true;
  else if (type == "NFC") m.nfc = true;
  else if (type == "Sequence" && need(n, "normalizers", "normalizer").size() <= 1) {
    for (const auto& inner : n["normalizers"]) read_normalizer(inner, m);
  } else {
    throw Error("normalizer " + type + " is not supported (only none, NFC or NFKC)");
  }
}

void read_byte_level(const json& b, BpeModel& m, bool use_regex) {
  if (type_of(b, "pre_tokenizer") != "ByteLevel") throw Error("pre_tokenizer must end in ByteLevel");
  if (flag(b, "use_regex", true) != use_regex) {
    throw Error(use_regex ? "pre_tokenizer ByteLevel without its regex (and no Split before it) is not supported"
                          : "pre_tokenizer ByteLevel after a Split must have use_regex false");
  }
  m.add_prefix_space = flag(b, "add_prefix_space", false);
}

void read_pre_tokenizer(const json& p, BpeModel& m) {
  if (p.is_null()) throw Error("pre_tokenizer is null; a byte-level BPE needs ByteLevel");
  const std::string type = type_of(p, "pre_tokenizer");
  if (type == "ByteLevel") return read_byte_level(p, m, true);
  const json& list = type == "Sequence" ? need(p, "pretokenizers", "pre_tokenizer") : json();
  if (!list.is_array() || list.size() != 2 || type_of(list[0], "pre_tokenizer") != "Split") {
    throw Error("pre_tokenizer " + type + " is not supported (ByteLevel, or Sequence [Split, ByteLevel])");
  }
  const json& split = list[0];
  const json& pattern = need(split, "pattern", "pre_tokenizer.Split");
  if (!pattern.contains("Regex")) throw Error("pre_tokenizer Split: only a Regex pattern is supported");
  if (split.value("behavior", "") != "Isolated" || flag(split, "invert", false)) {
    throw Error("pre_tokenizer Split: only behavior Isolated without invert is supported");
  }
  m.split_pattern = pattern["Regex"].get<std::string>();
  read_byte_level(list[1], m, false);
}

void read_model(const json& j, BpeModel& m, std::vector<bool>& filled) {
  if (j.contains("type") && j["type"] != "BPE") {
    throw Error("model type " + j["type"].dump() + " is not supported (only byte-level BPE)");
  }
  if (j.contains("dropout") && !j["dropout"].is_null() && j["dropout"].get<double>() != 0.0) {
    throw Error("model.dropout is set; dropout makes encoding random and is not supported");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (j.contains(key) && !j[key].is_null() && j[key] != "") throw Error(std::string("model.") + key + " is not supported");
  }
  if (flag(j, "byte_fallback", false)) throw Error("model.byte_fallback is not supported (a byte-level BPE needs none)");
  m.ignore_merges = flag(j, "ignore_merges", false);

  const json& vocab = need(j, "vocab", "model");
  if (!vocab.is_object()) throw Error("\"model.vocab\" is not an object");
  for (const auto& [token, id_json] : vocab.items()) {
    const int64_t id = id_json.get<int64_t>();
    if (id < 0 || id > 1 << 24) throw Error("token \"" + token + "\" has id " + std::to_string(id));
    if (size_t(id) >= m.vocab.size()) m.vocab.resize(size_t(id) + 1), filled.resize(size_t(id) + 1);
    if (filled[size_t(id)]) throw Error("id " + std::to_string(id) + " is given to two tokens");
    m.vocab[size_t(id)] = token;
    filled[size_t(id)] = true;
  }

  const json& merges = need(j, "merges", "model");
  if (!merges.is_array()) throw Error("\"model.merges\" is not an array");
  m.merges.reserve(merges.size());
  for (const auto& merge : merges) {
    if (merge.is_string()) {  // "a b": byte-level tokens hold no space, so the split is unambiguous
      const std::string s = merge.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        throw Error("merge \"" + s + "\" is not two tokens separated by one space");
      }
      m.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (merge.is_array() && merge.size() == 2) {
      m.merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
    } else {
      throw Error("merge " + merge.dump() + " is neither \"a b\" nor [a, b]");
    }
  }
}

void read_added_tokens(const json& list, BpeModel& m, std::vector<bool>& filled) {
  if (list.is_null()) return;
  for (const auto& t : list) {
    const std::string content = need(t, "content", "added_tokens[]").get<std::string>();
    const int64_t id = need(t, "id", "added_tokens[]").get<int64_t>();
    for (const char* key : {"lstrip", "rstrip", "single_word"}) {
      if (flag(t, key, false)) throw Error("added token \"" + content + "\": " + key + " is not supported");
    }
    if (content.empty() || id < 0 || id > 1 << 24) throw Error("added token \"" + content + "\" is malformed");
    if (size_t(id) >= m.vocab.size()) m.vocab.resize(size_t(id) + 1), filled.resize(size_t(id) + 1);
    if (filled[size_t(id)] && m.vocab[size_t(id)] != content) {
      throw Error("added token \"" + content + "\" has id " + std::to_string(id) + ", which is \"" +
                  m.vocab[size_t(id)] + "\" in the vocabulary");
    }
    m.vocab[size_t(id)] = content;
    filled[size_t(id)] = true;
    (flag(t, "special", false) ? m.special : m.added).push_back(content);
  }
}

BpeModel read_tokenizer_json(const json& j) {
  BpeModel m;
  std::vector<bool> filled;
  read_model(need(j, "model", ""), m, filled);
  read_added_tokens(j.value("added_tokens", json()), m, filled);
  const auto hole = std::find(filled.begin(), filled.end(), false);
  if (hole != filled.end()) throw Error("no token has id " + std::to_string(hole - filled.begin()));
  read_normalizer(j.value("normalizer", json()), m);
  read_pre_tokenizer(need(j, "pre_tokenizer", ""), m);
  const json& decoder = need(j, "decoder", "");
  if (decoder.is_null() || type_of(decoder, "decoder") != "ByteLevel") throw Error("decoder must be ByteLevel");
  const json post = j.value("post_processor", json());
  if (!post.is_null() && type_of(post, "post_processor") != "ByteLevel") {
    throw Error("post_processor " + post["type"].get<std::string>() + " is not supported (it would add tokens)");
  }
  return m;
}

void write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  if (!out.flush()) throw Error(file.string() + ": cannot write");
}

}  // namespace

Tokenizer Tokenizer::load(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "tokenizer.json" : path;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open");
  try {
    return Tokenizer(read_tokenizer_json(json::parse(in)));
  } catch (const json::exception& e) {  // corrupt JSON, or a field of the wrong type
    throw Error(file.string() + ": " + e.what());
  } catch (const Error& e) {
    throw Error(file.string() + ": " + e.what());
  }
}

void Tokenizer::save(const fs::path& dir) const {
  const BpeModel& m = impl_->model;
  using ojson = nlohmann::ordered_json;  // keys in the order Hugging Face writes them, vocab in id order

  ojson added_tokens = ojson::array(), added_decoder = ojson::object();
  for (const auto* list : {&m.special, &m.added}) {
    for (const auto& content : *list) {
      const ojson entry = {{"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                           {"normalized", list == &m.added}, {"special", list == &m.special}};
      ojson with_id = {{"id", token_id(content)}};
      with_id.update(entry);
      added_tokens.push_back(with_id);
      added_decoder[std::to_string(token_id(content))] = entry;
    }
  }
  ojson vocab = ojson::object();
  for (size_t i = 0; i < m.vocab.size(); ++i) vocab[m.vocab[i]] = i;
  ojson merges = ojson::array();
  for (const auto& [a, b] : m.merges) merges.push_back(a + " " + b);

  auto byte_level = [&](bool use_regex) {
    return ojson{{"type", "ByteLevel"}, {"add_prefix_space", m.add_prefix_space}, {"trim_offsets", true},
                 {"use_regex", use_regex}};
  };
  ojson pre = byte_level(true);
  if (!m.split_pattern.empty()) {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"}, {"pattern", {{"Regex", m.split_pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
             byte_level(false)}}};
  }
  ojson normalizer = nullptr;
  if (m.nfkc) normalizer = {{"type", "NFKC"}};
  if (m.nfc) normalizer = {{"type", "NFC"}};

  ojson j = {{"version", "1.0"},
             {"truncation", nullptr},
             {"padding", nullptr},
             {"added_tokens", added_tokens},
             {"normalizer", normalizer},
             {"pre_tokenizer", pre},
             {"post_processor", nullptr},
             {"decoder", byte_level(true)},
             {"model",
              {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
               {"ignore_merges", m.ignore_merges}, {"vocab", vocab}, {"merges", merges}}}};

  ojson config = {{"add_bos_token", false},
                  {"add_eos_token", false},
                  {"add_prefix_space", m.add_prefix_space},
                  {"added_tokens_decoder", added_decoder},
                  {"additional_special_tokens", ojson::array()},
                  {"clean_up_tokenization_spaces", false},
                  {"model_max_length", 32768},
                  {"tokenizer_class", "PreTrainedTokenizerFast"},
                  {"chat_template", kChatTemplate}};
  // MiniMind's roles: a reply starts after <|im_start|> and ends at <|im_end|>; padding is <|endoftext|>.
  const std::pair<const char*, std::string_view> roles[] = {
      {"bos_token", kImStart}, {"eos_token", kImEnd}, {"pad_token", kEndOfText}, {"unk_token", kEndOfText}};
  for (auto [key, token] : roles) {
    if (token_id(token) >= 0) config[key] = token;
  }

  fs::create_directories(dir);
  write_file(dir / "tokenizer.json", j.dump(2, ' ', false) + "\n");
  write_file(dir / "tokenizer_config.json", config.dump(2, ' ', false) + "\n");
}

// ---- chat template ----

const std::string_view kChatTemplate =
    "{%- if system_prompt is defined and system_prompt and "
    "(messages | length == 0 or messages[0]['role'] != 'system') -%}"
    "{{- '<|im_start|>system\\n' + system_prompt + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}";

std::string apply_chat_template(const std::vector<Message>& messages, bool add_generation_prompt,
                                std::string_view system_prompt) {
  std::string out;
  auto turn = [&](std::string_view role, std::string_view content) {
    out.append(kImStart).append(role).append("\n").append(content).append(kImEnd).append("\n");
  };
  if (!system_prompt.empty() && (messages.empty() || messages[0].role != "system")) turn("system", system_prompt);
  for (const auto& m : messages) turn(m.role, m.content);
  if (add_generation_prompt) out.append(kImStart).append("assistant\n");
  return out;
}

}  // namespace vkm::tok
