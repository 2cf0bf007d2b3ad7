#pragma once
// What `chat`, `generate` and `bench generate` share: the decoding and sampling flags, and a model folder loaded
// onto the device with its tokenizer.
#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "model/generate/decoder.hpp"
#include "model/io/model_files.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::tools {

struct DecodingFlags {
  std::string model, tokenizer;
  int64_t max_new_tokens = 512, context = 0, top_k = 0;
  // MiniMind's chat defaults.
  float temperature = 0.85f, top_p = 0.85f, repetition_penalty = 1.0f;
  bool greedy = false;
  std::optional<uint32_t> seed;  // unset: a new one each run
  std::string cache = "f32";
};

// --model, --tokenizer, --max-new-tokens, --context, --cache, --temperature, --top-k, --top-p,
// --repetition-penalty, --greedy, --seed.
void add_decoding_flags(CLI::App* sub, DecodingFlags& f);
// The decoder's options for `batch` sequences; throws vkm::Error naming the flag that is out of range.
model::DecoderOptions decoder_options(const DecodingFlags& f, int64_t batch);
uint32_t seed_of(const DecodingFlags& f);

// A model folder (or GGUF file) and its tokenizer, the weights uploaded. Throws vkm::Error naming the folder
// when the tokenizer has more tokens than the model's vocabulary.
struct LoadedModel {
  LoadedModel(Context& ctx, const std::string& model, const std::string& tokenizer = {});
  model::ParamLayout layout;
  tok::Tokenizer tokenizer;
  Arena arena;
  Tensor params;

 private:
  LoadedModel(Context& ctx, const std::string& model, io::ModelFiles files, tok::Tokenizer t);
};

}  // namespace vkm::tools
