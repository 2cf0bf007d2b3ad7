#pragma once
// The byte-level BPE pre-tokenizer shared by the encoder and the trainer: the GPT-2/Qwen2 regex split on
// Unicode classes (PCRE2), and the byte -> printable character map that tokenizer.json's tokens use.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace vkm::tok {

// Calls `piece` for each pre-token of `text`, in order, as Qwen2's (and MiniMind's) ByteLevel pre-tokenizer
// splits. `text` may be any bytes; invalid UTF-8 is split as tokenizers does (documented in the .cpp).
void pretokenize(std::string_view text, const std::function<void(std::string_view piece)>& piece);

// GPT-2's bytes_to_unicode: each byte as the UTF-8 of its printable stand-in, and back.
std::string to_byte_level(std::string_view bytes);
std::string from_byte_level(std::string_view token);  // throws vkm::Error on a character outside the map

// NFKC normalization (optional in front of pre-tokenization). Invalid UTF-8 bytes pass through unchanged.
std::string nfkc(std::string_view text);
std::string nfc(std::string_view text);  // Qwen2's normalizer

// The regex of tokenizers' ByteLevel pre-tokenizer (use_regex true): GPT-2's, used by MiniMind.
inline constexpr std::string_view kByteLevelPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// A regex split as tokenizers' Split pre-tokenizer with behavior "Isolated" does it: every match and every
// stretch between matches is a piece. Qwen2-style tokenizer.json files carry their own pattern; `pretokenize`
// is Pretokenizer(kByteLevelPattern). Throws vkm::Error on a pattern PCRE2 rejects. Thread-safe.
class Pretokenizer {
 public:
  explicit Pretokenizer(std::string_view pattern = kByteLevelPattern);
  void split(std::string_view text, const std::function<void(std::string_view piece)>& piece) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::shared_ptr<const Code> code_;
  bool byte_level_ = false;  // kByteLevelPattern itself: split by a hand-written scanner (same pieces, faster)
};

}  // namespace vkm::tok
