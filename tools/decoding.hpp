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
  std::string weights = "auto";
};

// --model, --tokenizer, --max-new-tokens, --context, --cache, --weights, --temperature, --top-k, --top-p,
// --repetition-penalty, --greedy, --seed.
void add_decoding_flags(CLI::App* sub, DecodingFlags& f);
// The decoder's options for `batch` sequences; throws vkm::Error naming the flag that is out of range.
model::DecoderOptions decoder_options(const DecodingFlags& f, int64_t batch);
uint32_t seed_of(const DecodingFlags& f);
// --weights f32, f16 or auto (unset: the device's default).
std::optional<DType> weights_storage(const std::string& flag);

// The flat parameter buffer on the device in `storage` (f32, or f16: each value rounded once); unset: the
// device's default (model::default_weights).
Tensor upload_params(Context& ctx, Arena& arena, const std::vector<float>& values, std::optional<DType> storage);

// A model folder (or GGUF file) and its tokenizer, the weights uploaded in the storage the decoder will read
// (DecoderOptions::weights, or the device's default), so that they are held once. Throws vkm::Error naming the
// folder when the tokenizer has more tokens than the model's vocabulary.
struct LoadedModel {
  LoadedModel(Context& ctx, const std::string& model, const std::string& tokenizer = {},
              std::optional<DType> weights = {});
  model::ParamLayout layout;
  tok::Tokenizer tokenizer;
  Arena arena;
  Tensor params;

 private:
  LoadedModel(Context& ctx, const std::string& model, io::ModelFiles files, tok::Tokenizer t,
              std::optional<DType> weights);
};

}  // namespace vkm::tools
