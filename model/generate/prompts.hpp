#pragma once
// The prompts file of `vkmind generate`: one prompt per line, either plain text or a JSON object, MiniMind's
// {"conversations": [{"role": ..., "content": ...}, ...]} (a trailing assistant message is the answer to
// replace) or {"text": ...}. Blank lines are skipped.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace vkm::model {

struct Prompt {
  int64_t line = 0;                    // in the file, from 1
  bool conversation = false;           // given as {"conversations": ...}
  std::vector<tok::Message> messages;  // the conversation, or the text as one user message
};

struct PromptFile {
  std::vector<Prompt> prompts;
  int64_t blank_lines = 0;
};

// Reads every prompt, or throws vkm::Error naming FILE:LINE (not valid UTF-8 or JSON, an unknown shape or role,
// an empty prompt, a conversation that does not end with the user). With `raw` (continuations of plain text
// for pretrained models) conversations are refused.
PromptFile read_prompts(const std::filesystem::path& file, bool raw);

// The tokens to continue: with `raw` the text as it is; otherwise the ChatML rendering of the messages with
// the generation prompt, `system` first when the conversation brings no system message of its own.
std::vector<int32_t> prompt_tokens(const Prompt& p, const tok::Tokenizer& t, bool raw, std::string_view system = {});

// Drops a conversation's oldest messages (never a system message, never the last user message) until its
// prompt_tokens() number fewer than `limit`; returns their tokens and how many messages went (0 when it fit).
// The caller checks the size: a last message too long alone still does not fit.
std::pair<std::vector<int32_t>, int64_t> fit_prompt(Prompt& p, const tok::Tokenizer& t, bool raw, std::string_view system,
                                                    int64_t limit);

}  // namespace vkm::model
