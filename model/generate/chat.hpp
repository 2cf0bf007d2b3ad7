#pragma once
// A multi-turn ChatML conversation over a Decoder of one sequence. The conversation is kept as tokens, exactly
// as the model saw and wrote them: the system block, then each turn (the user block, "<|im_start|>assistant\n",
// the answer's tokens, <|im_end|> and "\n"), which is what tok::apply_chat_template renders. The cache holds a
// prefix of it, so each new turn prefills only what the cache lacks. When a turn would not fit the context
// with room for an answer, the oldest turns are dropped (never the system prompt) and the rest prefilled anew.
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/generate/decoder.hpp"
#include "model/generate/generate.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::model {

struct ChatOptions {
  std::string system_prompt;    // empty: none
  int64_t max_new_tokens = 512;  // per answer
};

struct ChatReply {
  std::string text;          // the answer as streamed: complete UTF-8 characters, U+FFFD for bytes that are not
  int64_t new_tokens = 0;    // the answer's tokens, the stop token excepted
  int64_t prompt_tokens = 0;  // tokens prefilled for this turn (what the cache lacked)
  int64_t dropped_turns = 0;  // the oldest turns dropped to fit the context
  Finish finish = Finish::stop;
  int64_t decode_steps = 0;  // one token each (the stop token included)
  double prefill_seconds = 0, decode_seconds = 0;
};

class ChatSession {
 public:
  // The decoder must decode one sequence; the tokenizer must have <|im_start|> and <|im_end|> and no more tokens
  // than the model's vocabulary. Both must outlive the session. Throws vkm::Error saying what is wrong.
  ChatSession(Decoder& decoder, const tok::Tokenizer& tokenizer, ChatOptions options);

  // Answers one user message, handing each piece of text to on_text as it is decoded. Throws vkm::Error (and
  // leaves the conversation as it was) for an empty message, one that is not valid UTF-8, or one too long for
  // the context even alone with the system prompt.
  ChatReply ask(std::string_view message, const std::function<void(std::string_view)>& on_text = {});

  void reset();  // forgets the turns, keeps the system prompt
  void set_system_prompt(std::string text);  // and forgets the turns
  const std::string& system_prompt() const { return options_.system_prompt; }
  int64_t turns() const { return int64_t(turns_.size()); }
  // The whole conversation so far as the model sees it: the system block and the turns.
  std::vector<int32_t> conversation() const;

 private:
  std::vector<int32_t> encode_block(std::string_view role, std::string_view content) const;

  Decoder& decoder_;
  const tok::Tokenizer& tokenizer_;
  ChatOptions options_;
  std::vector<int32_t> after_answer_;  // <|im_end|> "\n": closes an answer
  std::vector<int32_t> answer_start_;  // "<|im_start|>assistant\n"
  std::vector<int32_t> stop_;          // <|im_end|>, and <|endoftext|> where the tokenizer has it
  std::vector<int32_t> system_;        // the system block's tokens, or none
  std::deque<std::vector<int32_t>> turns_;
  int64_t cached_ = 0;  // tokens of system_ + turns_ (in order) that are in the decoder's cache
};

}  // namespace vkm::model
