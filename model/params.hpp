#pragma once
// All parameters of a model in one flat f32 buffer, each tensor a named view (Hugging Face LLaMA names);
// gradients and Adam's m and v are flat buffers of the same layout, so zeroing gradients, the global norm
// and AdamW are one dispatch each over the whole buffer.
//
// Layout, in this order, each tensor starting at a multiple of kParamAlign elements (256 bytes):
//   model.embed_tokens.weight                          [V, C]
//   per layer i, model.layers.{i}.:
//     input_layernorm.weight [C], self_attn.{q,k,v,o}_proj.weight, post_attention_layernorm.weight [C],
//     mlp.gate_proj.weight [F, C] and mlp.up_proj.weight [F, C] ADJACENT (up starts right after gate, with no
//     padding, so [gate; up] is one [2F, C] view: the stacked weight the fused swiglu path multiplies by),
//     mlp.down_proj.weight [C, F]
//   model.norm.weight [C]
//   lm_head.weight [V, C] (only without tied embeddings)
// Padding between tensors is zero. up_proj is 256-byte aligned whenever F*C is a multiple of 64 (every preset).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/memory.hpp"
#include "engine/tensor.hpp"
#include "model/config.hpp"

namespace vkm::model {

constexpr int64_t kParamAlign = 64;  // elements

enum class ParamKind { embedding, linear, norm };

struct ParamEntry {
  std::string name;
  int64_t offset;  // elements from the start of the flat buffer
  Shape shape;
  ParamKind kind;
  int64_t numel() const;
};

// Indices into ParamLayout::entries() of one layer's tensors.
struct LayerParams {
  size_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelConfig& config);

  const ModelConfig& config() const { return config_; }
  const std::vector<ParamEntry>& entries() const { return entries_; }
  int64_t total_elems() const { return total_; }  // the flat buffer's size, padding included
  int64_t parameter_count() const;               // the sum of the tensors' sizes, padding excluded

  const ParamEntry& entry(const std::string& name) const;  // throws vkm::Error for an unknown name
  size_t embed() const { return embed_; }
  size_t final_norm() const { return final_norm_; }
  size_t head() const { return head_; }  // the embedding itself when tied
  const LayerParams& layer(int64_t i) const { return layers_.at(size_t(i)); }

  // The view of entry `index` (or by name) in a flat buffer of total_elems() f32 (values, grads, m or v).
  Tensor view(const Tensor& flat, size_t index) const;
  Tensor view(const Tensor& flat, const std::string& name) const;
  // Layer i's [gate; up] as one [2F, C] view.
  Tensor gate_up(const Tensor& flat, int64_t layer) const;

 private:
  size_t add(std::string name, Shape shape, ParamKind kind);
  void check_flat(const Tensor& flat) const;

  ModelConfig config_;
  std::vector<ParamEntry> entries_;
  std::vector<LayerParams> layers_;
  size_t embed_ = 0, final_norm_ = 0, head_ = 0;
  int64_t total_ = 0;
};

// The initial values of the flat buffer, as transformers' LlamaForCausalLM._init_weights (and MiniMind) set
// them: embedding and linear weights normal(0, initializer_range), norm weights 1, padding 0. Deterministic for
// a seed: std::mt19937_64 and a Box-Muller transform written here, each tensor from its own stream (seed and
// tensor index), so the values do not depend on the standard library's distributions.
std::vector<float> init_params(const ParamLayout& layout, uint64_t seed);

// The model's flat device buffers, each one arena allocation of total_elems() elements: f32, and the weights'
// 16-bit working copy of mixed precision in `half` (f16 or bf16; f32 means none).
struct ParamBuffers {
  Tensor values, grads, m, v;  // m and v only with optimizer state
  Tensor half;                 // only with a 16-bit type
};
ParamBuffers allocate_params(Arena& arena, const ParamLayout& layout, bool optimizer_state, DType half = DType::f32);

}  // namespace vkm::model
