#pragma once
// JSONL records as MiniMind writes them, turned into token ids (and, for SFT, a loss mask).
//
// Pretrain: {"text": "..."}  ->  encode(text); every token is a target.
// SFT:      {"conversations": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   laid out as tok::apply_chat_template(messages, false) renders it, each message being
//     "<|im_start|>{role}\n" + content + "<|im_end|>" + "\n"
//   and encoded segment by segment: encode("<|im_start|>{role}\n"), encode(content), the id of <|im_end|>,
//   encode("\n"). Encoding by segments puts the mask boundary exactly on a token boundary; the ids equal
//   encode(apply_chat_template(...)) whenever no content begins with whitespace that the byte-level
//   pre-tokenizer would join to the "\n" before it (tested on the sample data).
//   Loss mask (1 = the model is trained to predict this token): exactly the tokens of an assistant
//   message's content and its <|im_end|>. Never the "<|im_start|>assistant\n" header, never the "\n" after
//   <|im_end|>, never any token of a system or user message.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer/tokenizer.hpp"

namespace vkm::data {

enum class Format : uint32_t { pretrain = 0, sft = 1 };
const char* format_name(Format f);

struct Sample {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;  // SFT: one 0/1 per id; pretrain: empty (all ids are targets)
};

// Encodes one JSONL line into `out` (cleared first). Returns what is wrong with the line (bad JSON, a
// missing or mistyped field, an unknown role, an empty conversation), or an empty string.
std::string encode_record(std::string_view line, Format format, const tok::Tokenizer& tokenizer, Sample& out);

}  // namespace vkm::data
