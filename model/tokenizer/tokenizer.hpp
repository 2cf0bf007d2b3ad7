#pragma once
// Byte-level BPE (GPT-2 / Qwen / MiniMind style), read from and written to Hugging Face's tokenizer.json.
// Interface agreed between the encoder (tokenizer.cpp) and the trainer (train.cpp); see docs/ARCHITECTURE.md.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vkm::tok {

// MiniMind's special tokens, always the first ids.
inline constexpr std::string_view kEndOfText = "<|endoftext|>";  // id 0, also padding
inline constexpr std::string_view kImStart = "<|im_start|>";     // id 1
inline constexpr std::string_view kImEnd = "<|im_end|>";         // id 2

// What a trained or loaded byte-level BPE consists of. Token strings are in the byte-level alphabet
// (GPT-2's bytes_to_unicode), exactly as tokenizer.json stores them.
struct BpeModel {
  std::vector<std::string> vocab;                            // id -> token string
  std::vector<std::pair<std::string, std::string>> merges;   // in rank order
  std::vector<std::string> special;                          // added special tokens (their ids are in vocab)
  bool nfkc = false;                                         // an NFKC normalizer in front
  // What other Hugging Face byte-level BPE files carry (the defaults are MiniMind's and GPT-2's):
  bool nfc = false;                          // an NFC normalizer (Qwen2)
  std::string split_pattern;                 // a Split regex before ByteLevel (Qwen2); empty: ByteLevel's regex
  bool add_prefix_space = false;             // ByteLevel's: a space in front of each piece lacking one
  bool ignore_merges = false;                // a word that is a token is taken whole (tokenizers >= 0.19)
  std::vector<std::string> added;            // added tokens that are not special (matched the same way)
};

class Tokenizer {
 public:
  explicit Tokenizer(BpeModel model);
  // Reads tokenizer.json (a file, or a folder holding one); throws vkm::Error naming the file and what is
  // wrong or unsupported.
  static Tokenizer load(const std::filesystem::path& path);
  // Writes tokenizer.json and tokenizer_config.json (ChatML chat template, bos/eos/pad) into `dir`.
  void save(const std::filesystem::path& dir) const;

  // As Hugging Face tokenizers encode: special tokens matched first (never split), the rest pre-tokenized
  // by the byte-level regex and merged by rank.
  std::vector<int32_t> encode(std::string_view text) const;
  // The exact bytes back (invalid UTF-8 included).
  std::string decode(std::span<const int32_t> ids) const;

  const BpeModel& model() const;
  int32_t vocab_size() const;

  // Each text encoded as encode() does, on `threads` threads (0: all cores).
  std::vector<std::vector<int32_t>> encode_batch(std::span<const std::string_view> texts, int threads = 0) const;
  // The id of a token string (byte-level spelling, or an added token's content); -1 if there is none.
  int32_t token_id(std::string_view token) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // shared: copies share the immutable tables (word caches are per thread)
};

// Decodes ids one at a time for streaming output: push() returns only complete UTF-8 characters, holding
// back the bytes of a character cut short; bytes that can never become a character are passed on as they
// are. flush() returns what is held back.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  std::string push(int32_t id);
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

// ChatML, as the Jinja template in tokenizer_config.json (kChatTemplate) renders it: each message as
// "<|im_start|>{role}\n{content}<|im_end|>\n", a system message with `system_prompt` first when one is given and
// the messages do not start with their own, and "<|im_start|>assistant\n" when add_generation_prompt.
struct Message {
  std::string role, content;
};
std::string apply_chat_template(const std::vector<Message>& messages, bool add_generation_prompt,
                                std::string_view system_prompt = {});
extern const std::string_view kChatTemplate;  // the Jinja form written to tokenizer_config.json

}  // namespace vkm::tok
