#pragma once
// The shape of a MiniMind2 / LLaMA model, its presets, and the Hugging Face LLaMA config.json it reads and writes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vkm::model {

struct ModelConfig {
  int64_t hidden = 512;          // hidden_size (C)
  int64_t layers = 8;            // num_hidden_layers
  int64_t heads = 8;             // num_attention_heads (Hq)
  int64_t kv_heads = 2;          // num_key_value_heads (Hkv); heads is a multiple of it
  int64_t head_dim = 64;         // hidden / heads
  int64_t ffn = 1408;            // intermediate_size (F)
  int64_t vocab = 6400;          // vocab_size (V)
  int64_t max_positions = 32768; // max_position_embeddings
  double rope_theta = 1e6;
  double eps = 1e-5;             // rms_norm_eps
  bool tie_embeddings = true;    // tie_word_embeddings: the output head is the embedding table
  double initializer_range = 0.02;

  // Throws vkm::Error naming the first inconsistent field (head_dim must be hidden / heads, a multiple of 4
  // and at most 256, as the attention kernel needs; heads a multiple of kv_heads; all sizes positive).
  void validate() const;

  // Elements of all parameters, as MiniMind2 counts them: embedding V*C; per layer q C*C, k and v C*Hkv*D
  // each, o C*C, gate/up/down 3*F*C, two norms C; final norm C; an untied head V*C (tied: nothing).
  int64_t parameter_count() const;
};

// "minimind2-small" (25,829,888 parameters), "minimind2" (104,030,976), "tiny" (for tests).
ModelConfig preset(std::string_view name);
std::vector<std::string> preset_names();

// Hugging Face LlamaForCausalLM config.json (model_type "llama", architectures ["LlamaForCausalLM"]).
std::string config_to_json(const ModelConfig& c);
// `source` names the file in errors. model_type "llama" or "minimind" is read; missing or ill-typed fields,
// rope_scaling, biases and other activations are refused with an error naming the source and the field.
ModelConfig config_from_json(std::string_view text, const std::string& source = "config.json");
ModelConfig load_config(const std::string& path);
void save_config(const ModelConfig& c, const std::string& path);

}  // namespace vkm::model
