// Data pipeline: JSONL formats and errors, SFT loss masks token by token, the token cache (reuse,
// invalidation, parallel chunks), packing and padding, the validation split, shuffling and cursor resume.
#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/data/batcher.hpp"
#include "model/data/dataset.hpp"
#include "model/data/token_cache.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kData = test::data_dir();

const tok::Tokenizer& tokenizer() {
  static const tok::Tokenizer t = tok::Tokenizer::load(kData / "tokenizer" / "trained");
  return t;
}

using test::TempDir;

std::vector<std::string> read_lines(const fs::path& f) {
  std::ifstream in(f);
  std::vector<std::string> out;  // test-side only: the sample files are small
  for (std::string s; std::getline(in, s);)
    if (!s.empty()) out.push_back(s);
  return out;
}

CacheOptions opts(Format f, const TempDir& d) {
  CacheOptions o;
  o.format = f;
  o.cache_dir = d.path / "cache";
  return o;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- formats and errors ---------------------------------------------------------------------------------

TEST(Data, PretrainTokensMatchEncoder) {
  TempDir d;
  fs::copy_file(kData / "corpus_sample.jsonl", d.path / "corpus.jsonl");
  const auto ds = TokenDataset::open(d.path / "corpus.jsonl", tokenizer(), opts(Format::pretrain, d));
  const auto lines = read_lines(kData / "corpus_sample.jsonl");
  ASSERT_EQ(ds.size(), lines.size());
  EXPECT_EQ(ds.format(), Format::pretrain);
  EXPECT_TRUE(ds.built());
  uint64_t total = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto want = tokenizer().encode(json::parse(lines[i])["text"].get<std::string>());
    ASSERT_EQ(ds.tokens(i), want) << "sample " << i;
    total += want.size();
  }
  EXPECT_EQ(ds.num_tokens(), total);
  EXPECT_TRUE(ds.mask(0).empty());
  // uint16 ids for a vocabulary of at most 65536: the token section is 2 bytes a token.
  EXPECT_LT(fs::file_size(ds.cache_path()), 64 * 4 + total * 2 + (lines.size() + 1) * 8 + 256);
}

TEST(Data, MalformedLinesNameFileAndLine) {
  TempDir d;
  const auto p = opts(Format::pretrain, d);
  auto bad_json = d.write("a.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"ok\"\n{\"text\": \"x\"}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(bad_json, tokenizer(), p); }).rfind(bad_json.string() + ":3: malformed JSON", 0), 0u)
      << error_of([&] { TokenDataset::open(bad_json, tokenizer(), p); });
  auto missing = d.write("b.jsonl", "{\"text\": \"ok\"}\n{\"txt\": \"ok\"}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(missing, tokenizer(), p); }), missing.string() + ":2: no \"text\" field");
  auto not_string = d.write("c.jsonl", "{\"text\": 5}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(not_string, tokenizer(), p); }), not_string.string() + ":1: \"text\" is not a string");
  auto empty = d.write("e.jsonl", "");
  EXPECT_EQ(error_of([&] { TokenDataset::open(empty, tokenizer(), p); }), empty.string() + ":1: empty file (no records)");
  auto blank = d.write("f.jsonl", "\n  \n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(blank, tokenizer(), p); }), blank.string() + ":1: empty file (no records)");

  const auto s = opts(Format::sft, d);
  auto role = d.write("g.jsonl",
                      "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n"
                      "{\"conversations\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"tool\", \"content\": \"x\"}]}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(role, tokenizer(), s); }),
            role.string() + ":2: conversations[1] has role \"tool\" (expected system, user or assistant)");
  auto no_conv = d.write("h.jsonl", "{\"text\": \"pretrain line in SFT\"}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(no_conv, tokenizer(), s); }), no_conv.string() + ":1: no \"conversations\" field");
  auto no_content = d.write("i.jsonl", "{\"conversations\": [{\"role\": \"user\"}]}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(no_content, tokenizer(), s); }),
            no_content.string() + ":1: conversations[0] has no string \"content\"");
  auto empty_conv = d.write("j.jsonl", "{\"conversations\": []}\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(empty_conv, tokenizer(), s); }), empty_conv.string() + ":1: \"conversations\" is empty");
  // No cache is left behind by a failed build.
  EXPECT_FALSE(fs::exists(TokenDataset::cache_path_for(role, s)));
}

TEST(Data, SkipBadLinesCountsThem) {
  TempDir d;
  auto f = d.write("a.jsonl", "{\"text\": \"one\"}\nnot json\n{\"text\": \"two\"}\n{\"x\": 1}\n\n{\"text\": \"three\"}\n");
  auto o = opts(Format::pretrain, d);
  o.skip_bad_lines = true;
  const auto ds = TokenDataset::open(f, tokenizer(), o);
  EXPECT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.skipped_lines(), 2u);
  EXPECT_EQ(ds.tokens(2), tokenizer().encode("three"));
  auto all_bad = d.write("b.jsonl", "nope\n[1]\n");
  EXPECT_EQ(error_of([&] { TokenDataset::open(all_bad, tokenizer(), o); }),
            all_bad.string() + ": no valid records (2 malformed lines skipped)");
}

TEST(Data, LastLineWithoutNewline) {
  TempDir d;
  auto f = d.write("a.jsonl", "{\"text\": \"one\"}\r\n{\"text\": \"two\"}");
  const auto ds = TokenDataset::open(f, tokenizer(), opts(Format::pretrain, d));
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.tokens(1), tokenizer().encode("two"));
}

TEST(Data, WideVocabularyUses32BitIds) {
  // The trained tokenizer padded past 65536 ids, with an added token at the top.
  tok::BpeModel m = tokenizer().model();
  while (m.vocab.size() < 70000) m.vocab.push_back("<filler" + std::to_string(m.vocab.size()) + ">");
  m.vocab.push_back("<|wide|>");
  m.added.push_back("<|wide|>");
  const tok::Tokenizer wide(std::move(m));
  ASSERT_EQ(wide.token_id("<|wide|>"), 70000);
  TempDir d;
  auto f = d.write("a.jsonl", "{\"text\": \"one<|wide|>two\"}\n");
  const auto ds = TokenDataset::open(f, wide, opts(Format::pretrain, d));
  EXPECT_EQ(ds.tokens(0), wide.encode("one<|wide|>two"));
  const auto ids = ds.tokens(0);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 70000), ids.end());
  // 4 bytes a token: the cache is larger than 2-byte ids could make it.
  EXPECT_GE(fs::file_size(ds.cache_path()), 64 * 2 + ids.size() * 4);
}

// --- SFT layout and loss mask -----------------------------------------------------------------------------

TEST(Data, SftMaskTokenByToken) {
  TempDir d;
  const std::vector<tok::Message> msgs = {{"system", "Be brief."}, {"user", "What is Debian?"},
                                          {"assistant", "A free OS."}, {"user", "谢谢"}, {"assistant", "不客气。"}};
  json conv = json::array();
  for (auto& m : msgs) conv.push_back({{"role", m.role}, {"content", m.content}});
  auto f = d.write("s.jsonl", json{{"conversations", conv}}.dump() + "\n");
  const auto ds = TokenDataset::open(f, tokenizer(), opts(Format::sft, d));
  ASSERT_EQ(ds.size(), 1u);
  const auto ids = ds.tokens(0);
  const auto mask = ds.mask(0);
  ASSERT_EQ(mask.size(), ids.size());
  // The same ids as the chat template rendered and encoded whole.
  EXPECT_EQ(ids, tokenizer().encode(tok::apply_chat_template(msgs, false)));

  // Expected, built token by token: header (0), content (1 for assistant), <|im_end|> (1 for assistant), "\n" (0).
  const auto& tk = tokenizer();
  const int32_t im_start = tk.token_id(tok::kImStart), im_end = tk.token_id(tok::kImEnd);
  std::vector<int32_t> want_ids;
  std::vector<uint8_t> want_mask;
  auto put = [&](const std::vector<int32_t>& v, uint8_t m) {
    for (int32_t id : v) want_ids.push_back(id), want_mask.push_back(m);
  };
  for (auto& m : msgs) {
    const uint8_t a = m.role == "assistant";
    put({im_start}, 0);
    put(tk.encode(m.role + "\n"), 0);
    put(tk.encode(m.content), a);
    put({im_end}, a);
    put(tk.encode("\n"), 0);
  }
  ASSERT_EQ(ids, want_ids);
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(mask[i], want_mask[i]) << "token " << i << " '" << tk.decode(std::span(&ids[i], 1)) << "'";
  // What the mask selects, decoded: exactly the assistant contents, each with its <|im_end|>.
  std::vector<int32_t> masked;
  for (size_t i = 0; i < ids.size(); ++i)
    if (mask[i]) masked.push_back(ids[i]);
  EXPECT_EQ(tk.decode(masked), "A free OS.<|im_end|>不客气。<|im_end|>");
  // Every <|im_start|> is unmasked; the token after an assistant <|im_end|> ("\n") is unmasked.
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == im_start) {
      EXPECT_EQ(mask[i], 0) << i;
    }
    if (ids[i] == im_end && i + 1 < ids.size()) {
      EXPECT_EQ(mask[i + 1], 0) << i;
    }
  }
}

TEST(Data, SftSampleFileMatchesChatTemplate) {
  TempDir d;
  fs::copy_file(kData / "sft_sample.jsonl", d.path / "sft.jsonl");
  const auto ds = TokenDataset::open(d.path / "sft.jsonl", tokenizer(), opts(Format::sft, d));
  const auto lines = read_lines(kData / "sft_sample.jsonl");
  ASSERT_EQ(ds.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<tok::Message> msgs;
    std::string assistant;
    const json record = json::parse(lines[i]);
    for (auto& t : record["conversations"]) {
      msgs.push_back({t["role"].get<std::string>(), t["content"].get<std::string>()});
      if (t["role"] == "assistant") assistant += t["content"].get<std::string>() + "<|im_end|>";
    }
    const auto ids = ds.tokens(i);
    ASSERT_EQ(ids, tokenizer().encode(tok::apply_chat_template(msgs, false))) << "line " << i + 1;
    std::vector<int32_t> masked;
    for (size_t k = 0; k < ids.size(); ++k)
      if (ds.mask(i)[k]) masked.push_back(ids[k]);
    EXPECT_EQ(tokenizer().decode(masked), assistant) << "line " << i + 1;
  }
}

// --- cache ----------------------------------------------------------------------------------------------

TEST(Data, CacheIsReusedAndInvalidated) {
  TempDir d;
  const fs::path src = d.path / "corpus.jsonl";
  fs::copy_file(kData / "corpus_sample.jsonl", src);
  auto o = opts(Format::pretrain, d);
  const auto first = TokenDataset::open(src, tokenizer(), o);
  EXPECT_TRUE(first.built());
  EXPECT_EQ(first.rebuild_reason(), "no cache yet");
  const auto cache_time = fs::last_write_time(first.cache_path());

  const auto second = TokenDataset::open(src, tokenizer(), o);
  EXPECT_FALSE(second.built());  // not tokenized again
  EXPECT_EQ(fs::last_write_time(second.cache_path()), cache_time);
  EXPECT_EQ(second.size(), first.size());
  EXPECT_EQ(second.tokens(7), first.tokens(7));

  // Touch the source: the cache is stale.
  fs::last_write_time(src, fs::last_write_time(src) + std::chrono::seconds(5));
  o.rebuild_stale = false;
  const std::string refused = error_of([&] { TokenDataset::open(src, tokenizer(), o); });
  EXPECT_NE(refused.find("stale token cache"), std::string::npos) << refused;
  EXPECT_NE(refused.find("the source file changed"), std::string::npos) << refused;
  o.rebuild_stale = true;
  const auto third = TokenDataset::open(src, tokenizer(), o);
  EXPECT_TRUE(third.built());
  EXPECT_EQ(third.rebuild_reason(), "the source file changed (size or modification time)");
  EXPECT_FALSE(TokenDataset::open(src, tokenizer(), o).built());

  // Appending a line changes the size.
  std::ofstream(src, std::ios::app) << "{\"text\": \"appended\"}\n";
  const auto fourth = TokenDataset::open(src, tokenizer(), o);
  EXPECT_TRUE(fourth.built());
  EXPECT_EQ(fourth.size(), first.size() + 1);
  EXPECT_EQ(fourth.tokens(fourth.size() - 1), tokenizer().encode("appended"));

  // Another tokenizer: a foreign cache.
  const auto tiny = tok::Tokenizer::load(kData / "tokenizer" / "tiny");
  ASSERT_NE(tokenizer_hash(tiny), tokenizer_hash(tokenizer()));
  const auto fifth = TokenDataset::open(src, tiny, o);
  EXPECT_TRUE(fifth.built());
  EXPECT_EQ(fifth.rebuild_reason(), "it was built with another tokenizer");

  // A corrupt file is rebuilt too.
  { std::ofstream(fifth.cache_path(), std::ios::binary | std::ios::trunc) << "garbage"; }
  // (fifth still maps the old inode: unaffected.)
  const auto sixth = TokenDataset::open(src, tiny, o);
  EXPECT_TRUE(sixth.built());
  EXPECT_EQ(sixth.rebuild_reason(), "the cache file is truncated");

  // The format is part of the cache's name and header.
  EXPECT_NE(TokenDataset::cache_path_for(src, opts(Format::sft, d)), TokenDataset::cache_path_for(src, o));
}

TEST(Data, ChunksAndThreadsGiveTheSameCache) {
  TempDir d;
  for (const char* name : {"corpus_sample.jsonl", "sft_sample.jsonl"}) {
    const Format f = std::string(name).starts_with("sft") ? Format::sft : Format::pretrain;
    fs::copy_file(kData / name, d.path / name);
    auto one = opts(f, d);
    one.cache_dir = d.path / "one";
    one.threads = 1;
    auto many = opts(f, d);
    many.cache_dir = d.path / "many";
    many.threads = 5;
    many.chunk_bytes = 300;  // many chunks, several lines longer than a chunk
    const auto a = TokenDataset::open(d.path / name, tokenizer(), one);
    const auto b = TokenDataset::open(d.path / name, tokenizer(), many);
    std::ifstream fa(a.cache_path(), std::ios::binary), fb(b.cache_path(), std::ios::binary);
    const std::string ca((std::istreambuf_iterator<char>(fa)), {}), cb((std::istreambuf_iterator<char>(fb)), {});
    EXPECT_EQ(ca, cb) << name;
  }
}

// Peak resident memory of this process, in KiB.
long peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST(Data, BuildingStreamsTheSource) {
  TempDir d;
  // ~24 MiB of JSONL; building holds one 1 MiB chunk at a time, so the peak grows far less than the file.
  const fs::path src = d.path / "big.jsonl";
  {
    const auto lines = read_lines(kData / "corpus_sample.jsonl");
    std::ofstream out(src, std::ios::binary);
    size_t bytes = 0;
    for (int rep = 0; bytes < (size_t(24) << 20); ++rep)
      for (auto& l : lines) out << l << '\n', bytes += l.size() + 1;
  }
  auto o = opts(Format::pretrain, d);
  o.chunk_bytes = size_t(1) << 20;
  tokenizer().encode("warm up");
  const long before = peak_rss_kib();
  const auto ds = TokenDataset::open(src, tokenizer(), o);
  const long growth = peak_rss_kib() - before;
  EXPECT_GT(ds.size(), 10000u);
  EXPECT_LT(growth, 12 * 1024) << "peak RSS grew by " << growth << " KiB while tokenizing a 24 MiB file";
}

// --- batches --------------------------------------------------------------------------------------------

struct Fixture {
  TempDir dir;
  TokenDataset pre, sft;
  Fixture()
      : pre(open("corpus_sample.jsonl", Format::pretrain)), sft(open("sft_sample.jsonl", Format::sft)) {}
  TokenDataset open(const char* name, Format f) {
    fs::copy_file(kData / name, dir.path / name, fs::copy_options::overwrite_existing);
    return TokenDataset::open(dir.path / name, tokenizer(), opts(f, dir));
  }
};

TEST(Data, PackedBatchesAreTheJoinedStream) {
  Fixture fx;
  BatcherOptions o;
  o.batch_size = 3;
  o.seq_len = 40;
  o.shuffle = false;
  Batcher b(fx.pre, o);
  // The stream: samples in file order, each followed by <|endoftext|> (0).
  std::vector<int32_t> stream;
  for (size_t i = 0; stream.size() < 20 * 3 * 41; i = (i + 1) % fx.pre.size()) {
    auto t = fx.pre.tokens(i);
    stream.insert(stream.end(), t.begin(), t.end());
    stream.push_back(0);
  }
  for (int k = 0; k < 20; ++k) {
    const Batch x = b.next();
    ASSERT_EQ(x.inputs.size(), 3u * 40);
    ASSERT_EQ(x.targets.size(), 3u * 40);
    ASSERT_EQ(x.loss_mask.size(), 3u * 40);
    for (int r = 0; r < 3; ++r) {
      const size_t w = size_t(k * 3 + r) * 41;  // windows of T + 1, one after another
      for (int t = 0; t < 40; ++t) {
        ASSERT_EQ(x.inputs[r * 40 + t], stream[w + t]) << k << " " << r << " " << t;
        ASSERT_EQ(x.targets[r * 40 + t], stream[w + t + 1]) << k << " " << r << " " << t;
        ASSERT_EQ(x.loss_mask[r * 40 + t], 1.0f);
      }
    }
  }
}

TEST(Data, PaddedSftRows) {
  Fixture fx;
  BatcherOptions o;
  o.batch_size = 4;
  o.seq_len = 48;
  o.shuffle = false;
  Batcher b(fx.sft, o);
  uint64_t longer = 0;
  for (size_t i = 0; i < fx.sft.size(); ++i) longer += fx.sft.length(i) > 49;
  EXPECT_GT(longer, 0u);
  EXPECT_LT(longer, fx.sft.size());
  EXPECT_EQ(b.truncated_samples(), longer);
  EXPECT_EQ(b.batches_per_epoch(), fx.sft.size() / 4);
  size_t sample = 0;
  for (int k = 0; k < 8; ++k) {
    const Batch x = b.next();
    for (int r = 0; r < 4; ++r, sample = (sample + 1) % fx.sft.size()) {
      const auto ids = fx.sft.tokens(sample);
      const auto m = fx.sft.mask(sample);
      for (size_t t = 0; t < 48; ++t) {
        const size_t at = size_t(r) * 48 + t;
        EXPECT_EQ(x.inputs[at], t < ids.size() ? ids[t] : 0) << sample << " " << t;
        EXPECT_EQ(x.targets[at], t + 1 < ids.size() ? ids[t + 1] : 0) << sample << " " << t;
        EXPECT_EQ(x.loss_mask[at], t + 1 < ids.size() ? float(m[t + 1]) : 0.0f) << sample << " " << t;
      }
    }
  }
}

TEST(Data, ValidationSplitIsDisjointAndStable) {
  Fixture fx;
  BatcherOptions o;
  o.val_fraction = 0.1;
  Batcher train(fx.pre, o);
  o.split = Split::validation;
  Batcher val(fx.pre, o);
  std::set<uint32_t> t(train.samples().begin(), train.samples().end()), v(val.samples().begin(), val.samples().end());
  for (uint32_t i : v) EXPECT_EQ(t.count(i), 0u) << i;
  EXPECT_EQ(t.size() + v.size(), fx.pre.size());
  EXPECT_GT(v.size(), fx.pre.size() * 5 / 100);
  EXPECT_LT(v.size(), fx.pre.size() * 15 / 100);
  // Stable: the same again, whatever the shuffle seed; another split seed gives another split.
  o.seed = 99;
  EXPECT_EQ(Batcher(fx.pre, o).samples(), val.samples());
  o.split_seed = 1234;
  EXPECT_NE(Batcher(fx.pre, o).samples(), val.samples());
  // A validation batch draws only validation samples.
  o.split_seed = BatcherOptions{}.split_seed;
  o.seq_len = 8;
  o.batch_size = 2;
  o.shuffle = false;
  Batcher vb(fx.sft, o);
  for (uint32_t i : vb.samples()) EXPECT_TRUE(in_validation(i, 0.1, o.split_seed));
}

TEST(Data, ShuffleIsSeededPerEpoch) {
  Fixture fx;
  BatcherOptions o;
  o.batch_size = 2;
  o.seq_len = 32;
  o.seed = 7;
  Batcher a(fx.sft, o), b(fx.sft, o);
  for (int k = 0; k < 30; ++k) {
    const Batch x = a.next(), y = b.next();
    ASSERT_EQ(x.inputs, y.inputs);
    ASSERT_EQ(x.loss_mask, y.loss_mask);
  }
  std::vector<uint32_t> e0, e1, e0_other_seed;
  o.seed = 8;
  Batcher c(fx.pre, o);
  o.seed = 7;
  Batcher p(fx.pre, o);
  for (uint64_t i = 0; i < p.num_samples(); ++i) {
    e0.push_back(p.sample_at(0, i));
    e1.push_back(p.sample_at(1, i));
    e0_other_seed.push_back(c.sample_at(0, i));
  }
  EXPECT_NE(e0, e1);
  EXPECT_NE(e0, e0_other_seed);
  for (auto* e : {&e0, &e1}) {  // each epoch is a permutation of the split
    std::vector<uint32_t> sorted = *e;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, p.samples());
  }
  // Unshuffled order is file order.
  o.shuffle = false;
  Batcher u(fx.pre, o);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(u.sample_at(3, i), i);
}

void expect_resume(const TokenDataset& ds, int n, int m) {
  BatcherOptions o;
  o.batch_size = 3;
  o.seq_len = 64;
  o.seed = 42;
  o.val_fraction = 0.05;
  Batcher a(ds, o);
  for (int k = 0; k < n; ++k) a.next();
  const Cursor saved = a.cursor();
  std::vector<Batch> want;
  for (int k = 0; k < m; ++k) want.push_back(a.next());
  Batcher b(ds, o);
  b.restore(saved);
  for (int k = 0; k < m; ++k) {
    const Batch got = b.next();
    ASSERT_EQ(got.start, want[k].start) << k;
    ASSERT_EQ(got.inputs, want[k].inputs) << k;
    ASSERT_EQ(got.targets, want[k].targets) << k;
    ASSERT_EQ(got.loss_mask, want[k].loss_mask) << k;
  }
}

TEST(Data, CursorResumesExactly) {
  Fixture fx;
  expect_resume(fx.pre, 5, 7);
  expect_resume(fx.pre, 300, 50);  // across epoch boundaries, mid-sample
  expect_resume(fx.sft, 5, 7);
  expect_resume(fx.sft, 20, 30);
  BatcherOptions o;
  Batcher b(fx.sft, o);
  EXPECT_THROW(b.restore(Cursor{0, 1000000, 0}), Error);
}

}  // namespace
}  // namespace vkm::data
