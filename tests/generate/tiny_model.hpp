#pragma once
// A small random (or given) model on the device and the same weights for the double-precision reference,
// shared by the generation tests. Weights are drawn with a larger spread than training starts from, so that the logits are
// far from flat and greedy choices are clear-cut.
#include <string>
#include <vector>

#include "engine/memory.hpp"
#include "model/config.hpp"
#include "model/params.hpp"
#include "tests/reference/model.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::test {

// The tiny preset with `vocab` tokens (a tokenizer's), drawn wide.
inline model::ModelConfig tiny_config(int64_t vocab = 300) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = vocab;
  c.initializer_range = 0.1;
  c.tie_embeddings = false;  // tied, a random model mostly predicts the token it was given
  return c;
}

struct TinyModel {
  model::ModelConfig config;
  model::ParamLayout layout;
  std::vector<float> values;
  Arena arena;
  Tensor params;

  explicit TinyModel(uint64_t seed = 1, const model::ModelConfig& c = tiny_config())
      : TinyModel(c, model::init_params(model::ParamLayout(c), seed)) {}
  // Given weights (a trained model's).
  TinyModel(const model::ModelConfig& c, std::vector<float> flat)
      : config(c), layout(c), values(std::move(flat)), arena(ctx(), "test model") {
    params = model::allocate_params(arena, layout, false).values;
    ctx().write(params, values);
  }

  ref::ModelShape shape() const {
    return {.B = 1, .T = 1, .C = config.hidden, .L = config.layers, .Hq = config.heads, .Hkv = config.kv_heads,
            .D = config.head_dim, .F = config.ffn, .V = config.vocab, .rope_theta = config.rope_theta,
            .eps = config.eps, .tied = config.tie_embeddings};
  }

  // The weights by their Hugging Face names, as the reference takes them.
  ref::ModelWeights weights() const {
    auto get = [&](const std::string& name) {
      const model::ParamEntry& e = layout.entry(name);
      return ref::Vec(values.begin() + e.offset, values.begin() + e.offset + e.numel());
    };
    ref::ModelWeights w;
    w.embed = get("model.embed_tokens.weight");
    for (int64_t l = 0; l < config.layers; ++l) {
      const std::string at = "model.layers." + std::to_string(l) + ".";
      w.layers.push_back({get(at + "input_layernorm.weight"), get(at + "self_attn.q_proj.weight"),
                          get(at + "self_attn.k_proj.weight"), get(at + "self_attn.v_proj.weight"),
                          get(at + "self_attn.o_proj.weight"), get(at + "post_attention_layernorm.weight"),
                          get(at + "mlp.gate_proj.weight"), get(at + "mlp.up_proj.weight"),
                          get(at + "mlp.down_proj.weight")});
    }
    w.norm = get("model.norm.weight");
    if (!config.tie_embeddings) w.head = get("lm_head.weight");
    return w;
  }
};

// Seeded token ids in [0, vocab).
inline std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = int32_t(g() % uint32_t(vocab));
  return ids;
}

}  // namespace vkm::test
