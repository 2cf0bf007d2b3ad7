// The byte-level BPE encoder and decoder: golden ids from Hugging Face's tokenizers.js
// (tools/golden_tokenizer.sh), special tokens, round trips of any bytes, streaming decoding, the chat template,
// tokenizer.json written and read back, and files refused with messages that say why.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/tokenizer/pretokenize.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/support/test_util.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace vkm::tok;

const fs::path kData = fs::path(__FILE__).parent_path().parent_path() / "data" / "tokenizer";

json read_json(const fs::path& file) {
  std::ifstream in(file);
  EXPECT_TRUE(in) << file;
  return json::parse(in);
}

using vkm::test::TempDir;

// What String::from_utf8_lossy makes of bytes: one U+FFFD per maximal ill-formed subpart.
std::string lossy(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t subpart;
    const size_t n = utf8_char(s, i, &subpart);
    if (n) out.append(s.substr(i, n));
    else out += "\xEF\xBF\xBD";
    i += n ? n : subpart;
  }
  return out;
}

std::vector<std::string> pieces(const Pretokenizer& p, std::string_view text) {
  std::vector<std::string> out;
  p.split(text, [&](std::string_view piece) { out.emplace_back(piece); });
  return out;
}

// ---- golden ids ----

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, MatchesTokenizersJs) {
  const fs::path dir = kData / GetParam();
  const Tokenizer tok = Tokenizer::load(dir);
  const json golden = read_json(dir / "golden.json");
  ASSERT_GE(golden["cases"].size(), 15u);
  std::vector<std::string> texts;
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(text), ids) << GetParam() << " / " << c["name"];
    if (!tok.model().nfc && !tok.model().nfkc) {
      EXPECT_EQ(tok.decode(ids), text) << c["name"];
    }
    texts.push_back(text);
  }
  // Batches (threads sharing the word cache) give what one text at a time gives.
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  const auto batch = tok.encode_batch(views, 4);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], tok.encode(texts[i])) << i;

  for (const auto& c : golden["chat"]) {
    std::vector<Message> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    const std::string text = apply_chat_template(messages, c["add_generation_prompt"], c.value("system_prompt", ""));
    EXPECT_EQ(text, c["text"].get<std::string>()) << c.dump();
    EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int32_t>>()) << c.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, Golden, ::testing::Values("tiny", "tiny_qwen", "trained"));

TEST(Tokenizer, TrainedGoldenHasChatTemplate) {
  EXPECT_GE(read_json(kData / "trained" / "golden.json")["chat"].size(), 5u);
}

// ---- pre-tokenization ----

TEST(Pretokenize, InvalidUtf8SplitsAsItsLossyText) {
  // The golden "lossy_invalid" case is this string after from_utf8_lossy.
  const std::string invalid = "ab\xE4\xB8" "cd \xFF\xFE e\xE4\xB8" "abc \xF0\x9F";
  const json golden = read_json(kData / "tiny" / "golden.json");
  std::string lossy_text;
  for (const auto& c : golden["cases"]) {
    if (c["name"] == "lossy_invalid") lossy_text = c["text"];
  }
  ASSERT_EQ(lossy(invalid), lossy_text);
  for (const Pretokenizer& p : {Pretokenizer(), Pretokenizer(Tokenizer::load(kData / "tiny_qwen").model().split_pattern)}) {
    std::vector<std::string> got;
    for (const auto& piece : pieces(p, invalid)) got.push_back(lossy(piece));
    EXPECT_EQ(got, pieces(p, lossy_text)) << p.pattern();
  }
}

TEST(Pretokenize, WhitespaceIsUnicodeWhiteSpaceAsInOniguruma) {
  // U+180E is not White_Space (PCRE2's \s would take it): it joins the space before it as punctuation does.
  EXPECT_EQ(pieces(Pretokenizer(), " \u180E" "b"), (std::vector<std::string>{" \u180E", "b"}));
  // U+3000 is: the last one before a letter stays alone (only U+0020 may lead a word).
  EXPECT_EQ(pieces(Pretokenizer(), "a\u3000\u3000b"), (std::vector<std::string>{"a", "\u3000", "\u3000", "b"}));
}

TEST(Pretokenize, ByteLevelAlphabet) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += char(b);
  EXPECT_EQ(from_byte_level(to_byte_level(all)), all);
  EXPECT_EQ(to_byte_level(" \n\t!"), "ĠĊĉ!");
  EXPECT_THROW(from_byte_level("中"), vkm::Error);
}

// ---- special tokens, round trips, streaming ----

TEST(Tokenizer, SpecialTokensAreNeverSplit) {
  const Tokenizer tok = Tokenizer::load(kData / "tiny");
  EXPECT_EQ(tok.encode("<|im_start|>"), std::vector<int32_t>{1});
  const auto ids = tok.encode("x<|im_end|><|endoftext|>y<|im_start|>user\n");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 2), 1);
  // Pieces of special tokens never turn into special ids.
  for (const char* text : {"<|im_start", "|im_end|>", "<|endoftext", "<<||>>"}) {
    for (int32_t id : tok.encode(text)) EXPECT_GT(id, 2) << text;
  }
}

TEST(Tokenizer, AnyBytesRoundTrip) {
  std::mt19937 rng(7);
  const std::vector<std::string> parts = {"的", "中国", " the", "😀", "\n\n", "  ", "<|im_end|>", "é", "e\u0301",
                                          "\xFF", "\xE4\xB8", "\xC0\x80", "\xED\xA0\x80", "'s", "123", "\t"};
  for (const char* name : {"tiny", "trained"}) {
    const Tokenizer tok = Tokenizer::load(kData / name);
    for (int round = 0; round < 300; ++round) {
      std::string text;
      const int n = int(rng() % 40);
      for (int i = 0; i < n; ++i) {
        if (rng() % 2) text += char(rng() % 256);
        else text += parts[rng() % parts.size()];
      }
      const auto ids = tok.encode(text);
      ASSERT_EQ(tok.decode(ids), text) << name << " round " << round;
    }
  }
}

// Mixed texts: words, CJK runs short and long (the merge's array and heap paths, cached and uncached words),
// digits, contractions, white space of every kind, special tokens and invalid UTF-8.
std::vector<std::string> mixed_texts(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  const std::vector<std::string> parts = {
      "的", "中国", "天地间，人为贵。", " the", " The", "hello", " world", "😀", "\n\n", "\n", "  ", "   \n", "\t",
      "\u00A0", "\u3000", "\u2003x", "<|im_end|>", "<|im_start|>", "<|endoftext|>", "é", "e\u0301", "\xFF",
      "\xE4\xB8", "\xC0\x80", "\xED\xA0\x80", "'s", "'re", "'ll", "'S", "don't", " 123", "4567", "٣", "Ⅻ", "!!",
      " ...", "«»", "—", "Ωμέγα", "Привет", "ثلاثة"};
  std::vector<std::string> texts;
  for (size_t t = 0; t < count; ++t) {
    std::string text;
    const int n = int(rng() % 60);
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng() % 20;
      if (r == 0) text += char(rng() % 256);
      else if (r == 1) text.append(20 + rng() % 60, "abcdefghijklmnopqrstuvwxyz"[rng() % 26]);  // long word
      else if (r == 2) {  // a CJK run of up to 40 characters (120 bytes)
        const std::string_view han = "春江潮水连海平月共生";
        for (int k = int(rng() % 40); k > 0; --k) text += han.substr(3 * (rng() % 10), 3);
      }
      else text += parts[rng() % parts.size()];
    }
    texts.push_back(text);
  }
  return texts;
}

TEST(Tokenizer, EncodeBatchOnAnyThreadsIsEncode) {
  const std::vector<std::string> texts = mixed_texts(400, 11);
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  for (const char* name : {"tiny", "tiny_qwen", "trained"}) {
    const Tokenizer tok = Tokenizer::load(kData / name);
    std::vector<std::vector<int32_t>> one;
    for (const auto& text : texts) one.push_back(tok.encode(text));
    for (int threads : {1, 2, 4}) {
      const auto batch = tok.encode_batch(views, threads);
      ASSERT_EQ(batch.size(), texts.size());
      for (size_t i = 0; i < texts.size(); ++i) ASSERT_EQ(batch[i], one[i]) << name << " threads " << threads << " text " << i;
    }
    // Again on this thread, its word cache now warm, and from a copy of the tokenizer and a second one loaded.
    const Tokenizer copy = tok, again = Tokenizer::load(kData / name);
    for (size_t i = 0; i < texts.size(); ++i) {
      ASSERT_EQ(tok.encode(texts[i]), one[i]) << name << " text " << i;
      ASSERT_EQ(copy.encode(texts[i]), one[i]) << name << " text " << i;
      ASSERT_EQ(again.encode(texts[i]), one[i]) << name << " text " << i;
      if (!tok.model().nfc && !tok.model().nfkc) {
        ASSERT_EQ(tok.decode(one[i]), texts[i]) << name << " text " << i;
      }
    }
  }
}

TEST(Pretokenize, ByteLevelScannerSplitsAsPcre2) {
  // kByteLevelPattern is split by a hand-written scanner; the same regex in a group goes through PCRE2.
  const Pretokenizer fast(kByteLevelPattern), pcre2("(?:" + std::string(kByteLevelPattern) + ")");
  std::vector<std::string> texts = mixed_texts(300, 5);
  std::mt19937 rng(3);
  const uint32_t samples[] = {0x20, 0x27, 0x41, 0x61, 0x30, 0x0A, 0x09, 0x0D, 0x85, 0xA0, 0xB2, 0xBD, 0x2C6, 0x1680,
                              0x180E, 0x2002, 0x200B, 0x2028, 0x202F, 0x205F, 0x3000, 0x3007, 0x4E00, 0xFF10, 0xFFFD,
                              0x10400, 0x1F600, 0x2160};
  for (int t = 0; t < 2000; ++t) {  // any code points, weighted towards the edges of the classes
    std::string text;
    for (int n = int(rng() % 16); n > 0; --n) {
      uint32_t cp = rng() % 3 ? samples[rng() % std::size(samples)] : rng() % 0x110000;
      if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
      if (cp < 0x80) text += char(cp);
      else if (cp < 0x800) text += char(0xC0 | cp >> 6), text += char(0x80 | (cp & 0x3F));
      else if (cp < 0x10000) text += char(0xE0 | cp >> 12), text += char(0x80 | (cp >> 6 & 0x3F)), text += char(0x80 | (cp & 0x3F));
      else text += char(0xF0 | cp >> 18), text += char(0x80 | (cp >> 12 & 0x3F)), text += char(0x80 | (cp >> 6 & 0x3F)), text += char(0x80 | (cp & 0x3F));
      if (rng() % 8 == 0) text += char(0x80 + rng() % 0x80);  // a stray byte
    }
    texts.push_back(text);
  }
  for (const auto& text : texts) ASSERT_EQ(pieces(fast, text), pieces(pcre2, text)) << text;
}

TEST(Tokenizer, StreamDecoderEmitsWholeCharacters) {
  const Tokenizer tok = Tokenizer::load(kData / "tiny");
  const std::string text = "你好，世界！😀 ok \xFF end 👨‍👩‍👧";
  StreamDecoder stream(tok);
  std::string out;
  for (int32_t id : tok.encode(text)) {
    const std::string chunk = stream.push(id);
    EXPECT_EQ(lossy(chunk), chunk == "\xFF" ? "\uFFFD" : chunk) << "a chunk ends inside a character";
    out += chunk;
  }
  out += stream.flush();
  EXPECT_EQ(out, text);

  // Byte by byte: the three bytes of 中 come out together, a stray byte at once, a cut-short one at flush.
  auto byte_id = [&](char b) { return tok.token_id(to_byte_level(std::string(1, b))); };
  StreamDecoder bytes(tok);
  EXPECT_EQ(bytes.push(byte_id('\xE4')), "");
  EXPECT_EQ(bytes.push(byte_id('\xB8')), "");
  EXPECT_EQ(bytes.push(byte_id('\xAD')), "中");
  EXPECT_EQ(bytes.push(byte_id('\x80')), "\x80");
  EXPECT_EQ(bytes.push(byte_id('\xF0')), "");
  EXPECT_EQ(bytes.flush(), "\xF0");
}

TEST(Tokenizer, DecodeRefusesUnknownIds) {
  const Tokenizer tok = Tokenizer::load(kData / "tiny");
  const int32_t bad[] = {tok.vocab_size()};
  EXPECT_THROW(tok.decode(bad), vkm::Error);
}

// ---- chat template ----

TEST(ChatTemplate, ChatMl) {
  EXPECT_EQ(apply_chat_template({{"user", "你好"}}, true), "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template({{"user", "a"}, {"assistant", "b"}}, false),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n");
  EXPECT_EQ(apply_chat_template({{"user", "a"}}, false, "S"),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na<|im_end|>\n");
  EXPECT_EQ(apply_chat_template({{"system", "own"}}, false, "S"), "<|im_start|>system\nown<|im_end|>\n");
}

// ---- tokenizer.json written and read ----

TEST(Tokenizer, SaveAndLoadKeepEverything) {
  for (const char* name : {"tiny", "tiny_qwen"}) {
    TempDir dir;
    const Tokenizer tok = Tokenizer::load(kData / name);
    tok.save(dir.path);
    const Tokenizer back = Tokenizer::load(dir.path);
    EXPECT_EQ(back.model().vocab, tok.model().vocab);
    EXPECT_EQ(back.model().merges, tok.model().merges);
    EXPECT_EQ(back.model().special, tok.model().special);
    EXPECT_EQ(back.model().added, tok.model().added);
    EXPECT_EQ(back.model().split_pattern, tok.model().split_pattern);
    EXPECT_EQ(back.model().nfc, tok.model().nfc);
    for (const auto& c : read_json(kData / name / "golden.json")["cases"]) {
      EXPECT_EQ(back.encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int32_t>>()) << c["name"];
    }
    const json config = read_json(dir.path / "tokenizer_config.json");
    EXPECT_EQ(config["chat_template"], std::string(kChatTemplate));
    EXPECT_EQ(config["bos_token"], "<|im_start|>");
    EXPECT_EQ(config["eos_token"], "<|im_end|>");
    EXPECT_EQ(config["pad_token"], "<|endoftext|>");
  }
}

// Writes `text` as a tokenizer.json and expects load to refuse it, naming the file and `why`.
void expect_refused(const std::string& text, const std::string& why) {
  TempDir dir;
  const fs::path file = dir.path / "tokenizer.json";
  std::ofstream(file) << text;
  try {
    Tokenizer::load(file);
    ADD_FAILURE() << "accepted; expected: " << why;
  } catch (const vkm::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    EXPECT_NE(message.find(why), std::string::npos) << message;
  }
}

TEST(Tokenizer, RefusesCorruptAndUnsupportedFiles) {
  const json good = read_json(kData / "tiny" / "tokenizer.json");
  auto with = [&](const json::json_pointer& at, const json& value) {
    json j = good;
    if (value.is_discarded()) j[at.parent_pointer()].erase(at.back());
    else j[at] = value;
    return j.dump();
  };
  const json gone(json::value_t::discarded);
  expect_refused(good.dump().substr(0, 1000), "parse error");
  expect_refused(with("/model/type"_json_pointer, "WordPiece"), "model type \"WordPiece\" is not supported");
  expect_refused(with("/model/type"_json_pointer, "Unigram"), "is not supported");
  expect_refused(with("/model/merges"_json_pointer, gone), "\"model.merges\" is missing");
  expect_refused(with("/model"_json_pointer, gone), "\"model\" is missing");
  expect_refused(with("/decoder"_json_pointer, {{"type", "WordPiece"}}), "decoder must be ByteLevel");
  expect_refused(with("/pre_tokenizer"_json_pointer, {{"type", "Whitespace"}}), "pre_tokenizer Whitespace is not supported");
  expect_refused(with("/normalizer"_json_pointer, {{"type", "Lowercase"}}), "normalizer Lowercase is not supported");
  expect_refused(with("/post_processor"_json_pointer, {{"type", "TemplateProcessing"}}), "TemplateProcessing is not supported");
  expect_refused(with("/model/merges/0"_json_pointer, "Ġ zz"), "names a token not in the vocabulary");
  expect_refused(with("/model/merges/0"_json_pointer, "Ġzz"), "is not two tokens");
  expect_refused(with("/model/vocab/a"_json_pointer, 100000), "no token has id");
  expect_refused(with("/added_tokens/0/lstrip"_json_pointer, true), "lstrip is not supported");
  expect_refused(with("/model/byte_fallback"_json_pointer, true), "byte_fallback is not supported");

  try {
    Tokenizer::load(kData / "no_such_tokenizer");
    ADD_FAILURE();
  } catch (const vkm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_tokenizer"), std::string::npos) << e.what();
  }
}

}  // namespace
