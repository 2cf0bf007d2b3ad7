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
#include <climits>
#include <cstring>
#include <atomic>
#include <fstream>
#include <mutex>
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

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }

struct Merge {
  int32_t rank, id;
};

// (left id, right id) -> rank and merged id: open addressing, linear probing, a power-of-two table at most
// half full. Ids are below 2^24, so the all-ones key never occurs and marks an empty slot.
class PairMap {
 public:
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
  }
  void set(uint64_t key, Merge m) {  // a repeated key is overwritten
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == kEmpty) ++size_;
      if (slots_[i].key == kEmpty || slots_[i].key == key) {
        slots_[i] = {key, m};
        return;
      }
    }
  }
  const Merge* find(uint64_t key) const {
    for (size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.merge;
      if (s.key == kEmpty) return nullptr;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    Merge merge;
  };
  static size_t mix(uint64_t k) {  // ids are small and dense: mix before bucketing
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    return size_t(k ^ (k >> 33));
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, size_ = 0;
};

uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xff51afd7ed558ccdULL);
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
  }
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

// Piece -> ids, per thread and tokenizer, so that encode_batch's threads never wait on each other. Flat: keys
// and ids in two arenas, slots in a power-of-two table that starts small and doubles up to a bound; once full
// it starts over (real text's frequent words come back at once). A tokenizer is known by its serial number,
// never by its address, so a cache outliving its tokenizer cannot answer for another.
class WordCache {
 public:
  static constexpr size_t kMaxWordBytes = 64;

  bool find(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
    const uint32_t tag = uint32_t(hash >> 32) | 1;
    for (size_t i = size_t(hash) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.tag == 0) return false;
      if (s.tag == tag && s.key_len == word.size() && std::memcmp(keys_.data() + s.key_at, word.data(), word.size()) == 0) {
        out.insert(out.end(), ids_.begin() + s.ids_at, ids_.begin() + s.ids_at + s.n_ids);
        return true;
      }
    }
  }
  // A word find() did not find.
  void insert(std::string_view word, uint64_t hash, std::span<const int32_t> ids) {
    if (2 * (used_ + 1) > slots_.size()) {
      if (slots_.size() >= kMaxSlots) empty();
      else grow();
    }
    place({0, uint32_t(keys_.size()), uint32_t(ids_.size()), uint16_t(word.size()), uint16_t(ids.size())}, hash);
    keys_.append(word);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++used_;
  }
  void clear() {  // and give the memory back
    slots_.assign(kMinSlots, Slot{});
    slots_.shrink_to_fit();
    mask_ = kMinSlots - 1;
    keys_ = {};
    ids_ = {};
    used_ = 0;
  }

 private:
  static constexpr size_t kMinSlots = 1024, kMaxSlots = size_t(1) << 17;
  struct Slot {
    uint32_t tag;  // 0: empty
    uint32_t key_at, ids_at;
    uint16_t key_len, n_ids;
  };
  void empty() {  // keeping the table's size
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    used_ = 0;
  }
  void place(Slot s, uint64_t hash) {
    s.tag = uint32_t(hash >> 32) | 1;
    size_t i = size_t(hash) & mask_;
    while (slots_[i].tag != 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
  void grow() {
    std::vector<Slot> old(slots_.size() * 2);
    old.swap(slots_);
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.tag != 0) place(s, hash_bytes(std::string_view(keys_).substr(s.key_at, s.key_len)));
    }
  }
  std::vector<Slot> slots_ = std::vector<Slot>(kMinSlots);
  size_t mask_ = kMinSlots - 1, used_ = 0;
  std::string keys_;
  std::vector<int32_t> ids_;
};

// This thread's cache for the tokenizer with serial `owner`: a few are kept, the oldest given up first.
WordCache& thread_cache(uint64_t owner) {
  struct Entry {
    uint64_t owner = 0;
    WordCache cache;
  };
  thread_local std::array<Entry, 4> entries;
  thread_local size_t next = 0;
  for (auto& e : entries) {
    if (e.owner == owner) return e.cache;
  }
  Entry& e = entries[next];
  next = (next + 1) % entries.size();
  e.owner = owner;
  e.cache.clear();
  return e.cache;
}

std::atomic<uint64_t> next_serial{1};
constexpr uint64_t kNoMerge = ~uint64_t(0);

}  // namespace

struct Tokenizer::Impl {
  struct Added {
    std::string content;
    int32_t id;
  };

  BpeModel model;
  StringMap<int32_t> ids;                                 // token string -> id
  std::array<int32_t, 256> byte_id;                       // byte -> id of its byte-level token
  PairMap merges;                                         // (left id, right id) -> rank and merged id
  std::vector<uint64_t> byte_pairs;                       // (byte << 8 | byte) -> rank << 32 | merged id, or kNoMerge
  std::vector<std::string> bytes;                         // id -> what it decodes to
  std::vector<Added> added;                               // special and other added tokens, longest first
  std::array<bool, 256> added_start{};                    // bytes an added token can start with
  Pretokenizer splitter;                                  // ByteLevel's regex, or the file's Split regex
  uint64_t serial = next_serial.fetch_add(1);            // names this tokenizer to the per-thread word caches

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
    merges.set(pair_key(ia->second, ib->second), {int32_t(r), iab->second});  // a repeated pair: the last wins, as in tokenizers
  }
  byte_pairs.assign(size_t(1) << 16, kNoMerge);
  for (size_t a = 0; a < 256; ++a) {
    for (size_t b = 0; b < 256; ++b) {
      if (const Merge* m = merges.find(pair_key(byte_id[a], byte_id[b]))) {
        byte_pairs[a << 8 | b] = uint64_t(uint32_t(m->rank)) << 32 | uint32_t(m->id);
      }
    }
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
  const uint64_t hash = cacheable ? hash_bytes(word) : 0;
  WordCache* cache = cacheable ? &thread_cache(serial) : nullptr;
  if (cache && cache->find(word, hash, out)) return;
  const size_t first = out.size();
  auto whole = model.ignore_merges ? ids.find(to_byte_level(word)) : ids.end();
  if (whole != ids.end()) out.push_back(whole->second);
  else merge(word, out);
  if (cache) cache->insert(word, hash, std::span(out).subspan(first));
}

// tokenizers' BPE: repeatedly the adjacent pair of lowest rank, the leftmost first among equals. Short words
// (nearly all) scan a small array of symbols for the minimum; long ones keep symbols in a linked list and
// candidate pairs in a min-heap by (rank, position), an entry being stale once either side has been merged into
// something else. Both pick the same pair at every step.
void Tokenizer::Impl::merge(std::string_view word, std::vector<int32_t>& out) const {
  const int32_t n = int32_t(word.size());
  if (n == 0) return;
  if (n <= 48) {
    // rm[i]: rank << 32 | merged id of the pair (id[i], id[i + 1]), all ones when it does not merge; ranks are
    // unique, so the first minimum of rm is the leftmost pair of lowest rank.
    int32_t id[48];
    uint64_t rm[48];
    for (int32_t i = 0; i < n; ++i) id[i] = byte_id[static_cast<unsigned char>(word[size_t(i)])];
    for (int32_t i = 0; i + 1 < n; ++i) {
      rm[i] = byte_pairs[size_t(static_cast<unsigned char>(word[size_t(i)])) << 8 | static_cast<unsigned char>(word[size_t(i) + 1])];
    }
    auto look = [&](int32_t i) {
      const Merge* m = merges.find(pair_key(id[i], id[i + 1]));
      rm[i] = m ? uint64_t(uint32_t(m->rank)) << 32 | uint32_t(m->id) : kNoMerge;
    };
    int32_t len = n;
    while (len > 1) {
      int32_t best = 0;
      uint64_t low = rm[0];
      for (int32_t i = 1; i + 1 < len; ++i) {
        const uint64_t r = rm[i];
        const bool lower = r < low;
        best = lower ? i : best;
        low = lower ? r : low;
      }
      if (low == kNoMerge) break;
      id[best] = int32_t(uint32_t(low));
      --len;
      for (int32_t i = best + 1; i < len; ++i) id[i] = id[i + 1];
      for (int32_t i = best + 1; i + 1 < len; ++i) rm[i] = rm[i + 1];
      if (best > 0) look(best - 1);
      if (best + 1 < len) look(best);
    }
    out.insert(out.end(), id, id + len);
    return;
  }

  struct Symbol {
    int32_t id, prev, next;  // id -1: merged into its left neighbour
  };
  struct Candidate {
    int32_t rank, pos, left, right, merged;  // the pair (left, right) of ids starting at symbol `pos`
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.resize(size_t(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i) sym[size_t(i)] = {byte_id[static_cast<unsigned char>(word[size_t(i)])], i - 1, i + 1 < n ? i + 1 : -1};

  const auto later = std::greater<>();
  auto consider = [&](int32_t pos) {
    if (pos < 0 || sym[size_t(pos)].next < 0) return;
    const int32_t l = sym[size_t(pos)].id, r = sym[size_t(sym[size_t(pos)].next)].id;
    if (const Merge* m = merges.find(pair_key(l, r))) {
      heap.push_back({m->rank, pos, l, r, m->id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = sym[size_t(c.pos)];
    if (left.id != c.left || left.next < 0 || sym[size_t(left.next)].id != c.right) continue;  // stale
    Symbol& right = sym[size_t(left.next)];
    left.id = c.merged;
    left.next = right.next;
    if (right.next >= 0) sym[size_t(right.next)].prev = c.pos;
    right.id = -1;
    consider(left.prev);
    consider(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
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
