#include "model/params.hpp"

#include <cmath>
#include <numbers>
#include <random>

#include "engine/error.hpp"
#include "model/random.hpp"

namespace vkm::model {

int64_t ParamEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t ParamLayout::add(std::string name, Shape shape, ParamKind kind) {
  entries_.push_back({std::move(name), total_, std::move(shape), kind});
  total_ += entries_.back().numel();
  return entries_.size() - 1;
}

ParamLayout::ParamLayout(const ModelConfig& config) : config_(config) {
  config_.validate();
  const int64_t C = config_.hidden, V = config_.vocab, F = config_.ffn;
  const int64_t nq = config_.heads * config_.head_dim, nkv = config_.kv_heads * config_.head_dim;
  auto align = [&] { total_ = (total_ + kParamAlign - 1) / kParamAlign * kParamAlign; };
  auto aligned = [&](std::string name, Shape shape, ParamKind kind) {
    align();
    return add(std::move(name), std::move(shape), kind);
  };
  embed_ = aligned("model.embed_tokens.weight", {V, C}, ParamKind::embedding);
  for (int64_t i = 0; i < config_.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerParams l;
    l.attn_norm = aligned(p + "input_layernorm.weight", {C}, ParamKind::norm);
    l.q = aligned(p + "self_attn.q_proj.weight", {nq, C}, ParamKind::linear);
    l.k = aligned(p + "self_attn.k_proj.weight", {nkv, C}, ParamKind::linear);
    l.v = aligned(p + "self_attn.v_proj.weight", {nkv, C}, ParamKind::linear);
    l.o = aligned(p + "self_attn.o_proj.weight", {C, nq}, ParamKind::linear);
    l.ffn_norm = aligned(p + "post_attention_layernorm.weight", {C}, ParamKind::norm);
    l.gate = aligned(p + "mlp.gate_proj.weight", {F, C}, ParamKind::linear);
    l.up = add(p + "mlp.up_proj.weight", {F, C}, ParamKind::linear);  // adjacent: [gate; up] is one view
    l.down = aligned(p + "mlp.down_proj.weight", {C, F}, ParamKind::linear);
    layers_.push_back(l);
  }
  final_norm_ = aligned("model.norm.weight", {C}, ParamKind::norm);
  head_ = config_.tie_embeddings ? embed_ : aligned("lm_head.weight", {V, C}, ParamKind::linear);
  align();
}

int64_t ParamLayout::parameter_count() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.numel();
  return n;
}

const ParamEntry& ParamLayout::entry(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  throw Error("no parameter named '" + name + "' in this model");
}

void ParamLayout::check_flat(const Tensor& flat) const {
  if (!flat || (flat.dtype != DType::f32 && flat.dtype != DType::f16 && flat.dtype != DType::bf16) ||
      flat.numel() != total_)
    throw Error("parameter buffer " + flat.describe() + " must be f32 (or its 16-bit copy) with " +
                std::to_string(total_) + " elements (ParamLayout::total_elems)");
}

Tensor ParamLayout::view(const Tensor& flat, size_t index) const {
  check_flat(flat);
  const ParamEntry& e = entries_.at(index);
  return flat.flat().view(e.offset, e.shape);
}

Tensor ParamLayout::view(const Tensor& flat, const std::string& name) const {
  const ParamEntry& e = entry(name);
  return view(flat, size_t(&e - entries_.data()));
}

Tensor ParamLayout::gate_up(const Tensor& flat, int64_t layer) const {
  check_flat(flat);
  const LayerParams& l = layers_.at(size_t(layer));
  return flat.flat().view(entries_[l.gate].offset, {2 * config_.ffn, config_.hidden});
}

namespace {

// Uniform in (0, 1]: the top 53 bits, never zero (the log below needs that).
double uniform_open0(std::mt19937_64& g) { return double((g() >> 11) + 1) * 0x1.0p-53; }

}  // namespace

std::vector<float> init_params(const ParamLayout& layout, uint64_t seed) {
  std::vector<float> values(size_t(layout.total_elems()), 0.0f);
  const double stdev = layout.config().initializer_range;
  for (size_t i = 0; i < layout.entries().size(); ++i) {
    const ParamEntry& e = layout.entries()[i];
    float* out = values.data() + e.offset;
    const int64_t n = e.numel();
    if (e.kind == ParamKind::norm) {
      std::fill(out, out + n, 1.0f);
      continue;
    }
    std::mt19937_64 g(splitmix64(seed ^ splitmix64(i + 1)));
    for (int64_t j = 0; j < n; j += 2) {
      const double r = std::sqrt(-2.0 * std::log(uniform_open0(g))), a = 2 * std::numbers::pi * uniform_open0(g);
      out[j] = float(stdev * r * std::cos(a));
      if (j + 1 < n) out[j + 1] = float(stdev * r * std::sin(a));
    }
  }
  return values;
}

ParamBuffers allocate_params(Arena& arena, const ParamLayout& layout, bool optimizer_state, DType half) {
  ParamBuffers b;
  const Shape s{layout.total_elems()};
  b.values = arena.alloc(DType::f32, s);
  b.grads = arena.alloc(DType::f32, s);
  if (optimizer_state) {
    b.m = arena.alloc(DType::f32, s);
    b.v = arena.alloc(DType::f32, s);
  }
  if (half != DType::f32) b.half = arena.alloc(half, s);
  return b;
}

}  // namespace vkm::model
