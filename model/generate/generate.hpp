#pragma once
// Generation over a Decoder: prompts in, new tokens out, each handed on as soon as it is read back (for
// streaming), every sequence stopping on its own at a stop token, its token budget, or the end of its context.
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "model/generate/decoder.hpp"

namespace vkm::model {

enum class Finish {
  stop,     // a stop token (not part of the output)
  length,   // max_new_tokens
  context,  // the cache is full
};
std::string_view finish_name(Finish f);  // "stop", "length", "context"

struct GenerateOptions {
  int64_t max_new_tokens = 512;
  std::vector<int32_t> stop;  // e.g. <|im_end|> and <|endoftext|>
};

struct Generated {
  std::vector<int32_t> tokens;  // the new tokens, without the stop token
  Finish finish = Finish::length;
};

struct GenerateResult {
  std::vector<Generated> sequences;  // one per decoder sequence
  int64_t steps = 0;                 // decoding steps after the prefill
  double prefill_seconds = 0, decode_seconds = 0;
};

// Appends prompts[b] to sequence b of the decoder (all sequences take part) and decodes until every sequence
// has finished. on_token(b, id) sees each new token of sequence b in order, the stop token excepted.
GenerateResult generate(Decoder& decoder, const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& options,
                        const std::function<void(int64_t b, int32_t token)>& on_token = {});

}  // namespace vkm::model
