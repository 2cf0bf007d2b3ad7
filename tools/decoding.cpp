#include "tools/decoding.hpp"

#include <cmath>
#include <random>

#include "engine/error.hpp"
#include "tools/bench_util.hpp"

namespace vkm::tools {

void add_decoding_flags(CLI::App* sub, DecodingFlags& f) {
  sub->add_option("--model", f.model, "Model folder (config.json + model.safetensors) or GGUF file")->required();
  sub->add_option("--tokenizer", f.tokenizer, "tokenizer.json (default: the model's own)");
  sub->add_option("--max-new-tokens", f.max_new_tokens, "Tokens per answer, at most")->capture_default_str();
  sub->add_option("--context", f.context, "Tokens the cache holds per sequence (0: the model's, at most 2048)")
      ->capture_default_str();
  sub->add_option("--cache", f.cache, "Key/value cache storage: f32, or f16 (half the memory)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  sub->add_option("--weights", f.weights,
                  "Storage of the weight matrices: f16 (half the memory and of the bytes each token reads; the "
                  "linear layers' inputs rounded to f16 too), f32, or auto: f16 where the device has 16-bit support")
      ->check(CLI::IsMember({"auto", "f32", "f16"}))
      ->capture_default_str();
  sub->add_option("--temperature", f.temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", f.top_k, "Sample from the k most likely tokens only (0: all)")->capture_default_str();
  sub->add_option("--top-p", f.top_p, "Sample from the fewest most likely tokens reaching this probability (1: all)")
      ->capture_default_str();
  sub->add_option("--repetition-penalty", f.repetition_penalty, "Penalty on tokens already seen (1: none)")
      ->capture_default_str();
  sub->add_flag("--greedy", f.greedy, "Always the most likely token (as --temperature 0)");
  sub->add_option("--seed", f.seed, "Sampling seed (default: a new one each run)");
}

model::DecoderOptions decoder_options(const DecodingFlags& f, int64_t batch) {
  if (f.max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1");
  if (f.context < 0) throw Error("--context must be positive (or 0: the model's)");
  if (!(f.temperature >= 0 && std::isfinite(f.temperature))) throw Error("--temperature must be 0 or positive");
  if (f.top_k < 0) throw Error("--top-k must be 0 or positive");
  if (!(f.top_p > 0 && f.top_p <= 1)) throw Error("--top-p must be in (0, 1]");
  if (!(f.repetition_penalty > 0 && std::isfinite(f.repetition_penalty)))
    throw Error("--repetition-penalty must be positive");
  model::DecoderOptions o;
  o.batch = batch;
  o.context = f.context;
  o.cache = f.cache == "f16" ? DType::f16 : DType::f32;
  o.weights = weights_storage(f.weights);
  o.sampling = {f.greedy ? 0.0f : f.temperature, f.top_k, f.top_p, f.repetition_penalty};
  return o;
}

uint32_t seed_of(const DecodingFlags& f) { return f.seed ? *f.seed : std::random_device{}(); }

std::optional<DType> weights_storage(const std::string& flag) {
  if (flag == "auto") return std::nullopt;
  return flag == "f16" ? DType::f16 : DType::f32;
}

Tensor upload_params(Context& ctx, Arena& arena, const std::vector<float>& values, std::optional<DType> storage) {
  const Tensor params = arena.alloc(storage.value_or(model::default_weights(ctx.info())), {int64_t(values.size())});
  write_values(ctx, params, values);
  return params;
}

LoadedModel::LoadedModel(Context& ctx, const std::string& model, const std::string& tokenizer,
                         std::optional<DType> weights)
    : LoadedModel(ctx, model, io::load_model(model), io::load_model_tokenizer(model, tokenizer), weights) {}

LoadedModel::LoadedModel(Context& ctx, const std::string& model, io::ModelFiles files, tok::Tokenizer t,
                         std::optional<DType> weights)
    : layout(files.config), tokenizer(std::move(t)), arena(ctx, "weights") {
  if (tokenizer.vocab_size() > files.config.vocab)
    throw Error(model + ": the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens but the model's vocabulary (config.json vocab_size) has " +
                std::to_string(files.config.vocab) + ": the tokenizer does not belong to this model");
  params = upload_params(ctx, arena, files.params, weights);
}

}  // namespace vkm::tools
