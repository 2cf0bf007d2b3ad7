#include "model/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/error.hpp"
#include "engine/ops/attention.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/cross_entropy.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/embedding.hpp"
#include "engine/ops/fill.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/rmsnorm.hpp"
#include "engine/ops/rope.hpp"
#include "engine/ops/swiglu.hpp"

namespace vkm::model {

// One block's saved activations (what its backward reads), as in tests/ops/block_test.cpp.
struct LayerActs {
  Tensor h1, rstd1, q, k, v, a, lse, x2, h2, rstd2, gate_up, act;
};

struct Transformer::Acts {
  Tensor ids, targets, mask, grad_scale, loss, logits, rope_table;
  std::vector<Tensor> xs;  // xs[l]: layer l's input; xs[L]: the last block's output
  std::vector<LayerActs> layers;
  Tensor hf, rstd_f, ce_scratch;
  // the backward's, shared by every layer; dA and dB carry the residual stream's gradient in turn
  Tensor dA, dB, dhf, dact, dgate_up, dh2, dx2, da, dq, dk, dv, dh1, norm_scratch, attn_scratch;
};

namespace {

using Alloc = std::function<Tensor(DType, Shape)>;

// Every activation tensor, in one order, from `alloc`: the same list sizes the arena and fills it.
// Activations (what flows between the matmuls, and its gradient) are in `act`; statistics, the loss and its
// inputs, and scratch stay f32.
template <class Acts>
void plan_into(const ModelConfig& c, int64_t B, int64_t T, DType act, const Alloc& alloc, Acts& a) {
  const int64_t C = c.hidden, F = c.ffn, V = c.vocab, rows = B * T;
  const Shape hidden{B, T, C}, qs{B, T, c.heads, c.head_dim}, kvs{B, T, c.kv_heads, c.head_dim};
  auto f32 = [&](Shape s) { return alloc(DType::f32, std::move(s)); };
  auto x = [&](Shape s) { return alloc(act, std::move(s)); };
  a.ids = alloc(DType::i32, {B, T});
  a.targets = alloc(DType::i32, {B, T});
  a.mask = f32({B, T});
  a.grad_scale = f32({1});
  a.loss = f32({1});
  a.rope_table = f32({T, c.head_dim / 2, 2});
  a.xs.clear();
  a.layers.clear();
  for (int64_t l = 0; l <= c.layers; ++l) a.xs.push_back(x(hidden));
  for (int64_t l = 0; l < c.layers; ++l) {
    LayerActs b;
    b.h1 = x(hidden), b.rstd1 = f32({rows}), b.q = x(qs), b.k = x(kvs), b.v = x(kvs), b.a = x(qs);
    b.lse = f32({B, c.heads, T}), b.x2 = x(hidden), b.h2 = x(hidden), b.rstd2 = f32({rows});
    b.gate_up = x({B, T, 2 * F}), b.act = x({B, T, F});
    a.layers.push_back(b);
  }
  a.hf = x(hidden), a.rstd_f = f32({rows});
  a.logits = x({B, T, V});
  a.ce_scratch = f32({ops::cross_entropy_scratch_elems(rows)});
  a.dA = x(hidden), a.dB = x(hidden), a.dhf = x(hidden);
  a.dact = x({B, T, F}), a.dgate_up = x({B, T, 2 * F}), a.dh2 = x(hidden), a.dx2 = x(hidden);
  a.da = x(qs), a.dq = x(qs), a.dk = x(kvs), a.dv = x(kvs), a.dh1 = x(hidden);
  a.norm_scratch = f32({ops::rmsnorm_backward_scratch_elems(rows, C)});
  // attention_backward_scratch_elems reads only q's shape: one f32 per (b, query head, t).
  a.attn_scratch = f32({B * c.heads * T});
}

// The list alone, for sizing.
void plan(const ModelConfig& c, int64_t B, int64_t T, DType act, const Alloc& alloc) {
  struct Dry {
    Tensor ids, targets, mask, grad_scale, loss, logits, rope_table;
    std::vector<Tensor> xs;
    std::vector<LayerActs> layers;
    Tensor hf, rstd_f, ce_scratch;
    Tensor dA, dB, dhf, dact, dgate_up, dh2, dx2, da, dq, dk, dv, dh1, norm_scratch, attn_scratch;
  } dry;
  plan_into(c, B, T, act, alloc, dry);
}

// q, k, v and the attention output as [B, T, heads * D], the rows a linear layer reads or writes.
Tensor merged_heads(const Tensor& t) { return t.reshape({t.dim(0), t.dim(1), t.dim(2) * t.dim(3)}); }

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

uint64_t activation_bytes(const ModelConfig& c, int64_t B, int64_t T, DType act, uint64_t align) {
  if (B <= 0 || T <= 0) throw Error("activation_bytes: the batch must be positive (B " + std::to_string(B) +
                                    ", T " + std::to_string(T) + ")");
  // In long double so that an absurd batch reports its size rather than wrapping around.
  long double total = 0;
  plan(c, B, T, act, [&](DType t, Shape s) {
    long double n = dtype_size(t);
    for (int64_t d : s) n *= (long double)d;
    total += std::ceil(n / align) * align;
    return Tensor{};
  });
  return total >= 1.8e19L ? UINT64_MAX : uint64_t(total);
}

Transformer::Transformer(Context& ctx, const ParamLayout& layout, int64_t B, int64_t T, DType activations)
    : layout_(layout), B_(B), T_(T), act_(activations), a_(std::make_unique<Acts>()) {
  const ModelConfig& c = layout.config();
  if (B <= 0 || T <= 0) throw Error("transformer: the batch must be positive (B " + std::to_string(B) + ", T " +
                                    std::to_string(T) + ")");
  if (T > c.max_positions)
    throw Error("transformer: sequences of " + std::to_string(T) + " tokens exceed max_position_embeddings " +
                std::to_string(c.max_positions));
  const DeviceInfo& d = ctx.info();
  const uint64_t align = std::max<uint64_t>(256, d.min_storage_offset_alignment);
  if (!ops::is_float(act_))
    throw Error("transformer: activations are f32, f16 or bf16, not " + std::string(dtype_name(act_)));
  ops::require_storage(ctx, act_, "the transformer's activations");
  const uint64_t need = activation_bytes(c, B, T, act_, align);
  uint64_t heap = 0;
  for (const auto& h : d.heaps) heap = std::max(heap, h.size);
  if (need > heap)
    throw Error("transformer: the activations of a batch of " + std::to_string(B) + " x " + std::to_string(T) +
                " tokens need " + mib(need) + " but the largest memory heap of '" + d.name + "' holds " + mib(heap) +
                "; use a smaller batch or shorter sequences");
  // Blocks as large as one allocation may be, so the arena is one block wherever it fits.
  const uint64_t block = std::min<uint64_t>(need, std::max<uint64_t>(d.max_memory_allocation / align * align, align));
  arena_ = std::make_unique<Arena>(ctx, "activations", MemoryKind::device, block);
  plan_into(c, B, T, act_, [&](DType t, Shape s) { return arena_->alloc(t, std::move(s)); }, *a_);
  ids_ = a_->ids, targets_ = a_->targets, mask_ = a_->mask, grad_scale_ = a_->grad_scale, loss_ = a_->loss;
  logits_ = a_->logits;
  ctx.write(a_->rope_table, ops::rope_table(T, c.head_dim, c.rope_theta));
  ctx.write(grad_scale_, std::vector<float>{1.0f});
}

Transformer::~Transformer() = default;

uint64_t Transformer::arena_bytes() const { return arena_->capacity(); }

void Transformer::record(Program& p, const Tensor& params, const Tensor& grads, const Tensor& params_half) const {
  const ModelConfig& c = layout_.config();
  const ParamLayout& L = layout_;
  const Acts& a = *a_;
  if (act_ != DType::f32 && (!params_half || params_half.dtype != act_))
    throw Error("transformer: " + std::string(dtype_name(act_)) + " activations need the weights' " +
                std::string(dtype_name(act_)) + " copy, not " +
                (params_half ? params_half.describe() : std::string("none")));
  // The matmuls and the embedding read the weights in the activations' type; norms read the fp32 master.
  const Tensor& matrices = act_ == DType::f32 ? params : params_half;
  auto W = [&](size_t i) { return L.view(matrices, i); };
  auto N = [&](size_t i) { return L.view(params, i); };
  const Tensor E = W(L.embed()), head = W(L.head()), final_norm = N(L.final_norm());

  // Forward: embedding, then each block exactly as tests/ops/block_test.cpp records it (rope in place, the
  // residual sums in place, gate and up as the one stacked [gate; up] weight).
  ops::embedding(p, E, a.ids, a.xs[0]);
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerParams& w = L.layer(l);
    const LayerActs& b = a.layers[size_t(l)];
    const Tensor& x = a.xs[size_t(l)];
    const Tensor& y = a.xs[size_t(l) + 1];
    ops::rmsnorm(p, x, N(w.attn_norm), b.h1, b.rstd1, float(c.eps));
    ops::linear(p, b.h1, W(w.q), merged_heads(b.q));
    ops::linear(p, b.h1, W(w.k), merged_heads(b.k));
    ops::linear(p, b.h1, W(w.v), merged_heads(b.v));
    ops::rope(p, b.q, b.q, a.rope_table);
    ops::rope(p, b.k, b.k, a.rope_table);
    ops::attention(p, b.q, b.k, b.v, b.a, b.lse);
    ops::linear(p, merged_heads(b.a), W(w.o), b.x2);
    ops::add(p, b.x2, x, b.x2);
    ops::rmsnorm(p, b.x2, N(w.ffn_norm), b.h2, b.rstd2, float(c.eps));
    ops::linear(p, b.h2, L.gate_up(matrices, l), b.gate_up);
    ops::swiglu_fused(p, b.gate_up, b.act);
    ops::linear(p, b.act, W(w.down), y);
    ops::add(p, y, b.x2, y);
  }
  const Tensor& xN = a.xs.back();
  ops::rmsnorm(p, xN, final_norm, a.hf, a.rstd_f, float(c.eps));
  ops::linear(p, a.hf, head, a.logits);
  ops::cross_entropy(p, a.logits, a.targets, a.mask, a.grad_scale, a.loss, a.ce_scratch);
  if (!grads) return;

  // Backward; a.logits now holds dlogits. Every weight gradient is added to.
  auto G = [&](size_t i) { return L.view(grads, i); };
  ops::linear_backward_input(p, a.logits, head, a.dhf);
  ops::linear_backward_weight(p, a.logits, a.hf, G(L.head()), true);
  ops::rmsnorm_backward(p, a.dhf, xN, final_norm, a.rstd_f, a.dA, G(L.final_norm()), a.norm_scratch, true);
  Tensor dy = a.dA, dx = a.dB;
  for (int64_t l = c.layers - 1; l >= 0; --l) {
    const LayerParams& w = L.layer(l);
    const LayerActs& b = a.layers[size_t(l)];
    const Tensor& x = a.xs[size_t(l)];
    ops::linear_backward_weight(p, dy, b.act, G(w.down), true);
    ops::linear_backward_input(p, dy, W(w.down), a.dact);
    ops::swiglu_fused_backward(p, b.gate_up, a.dact, a.dgate_up);
    ops::linear_backward_weight(p, a.dgate_up, b.h2, L.gate_up(grads, l), true);
    ops::linear_backward_input(p, a.dgate_up, L.gate_up(matrices, l), a.dh2);
    ops::rmsnorm_backward(p, a.dh2, b.x2, N(w.ffn_norm), b.rstd2, a.dx2, G(w.ffn_norm), a.norm_scratch, true);
    ops::add(p, a.dx2, dy, a.dx2);  // the residual's share: dx2 = dy + (through the FFN)
    ops::linear_backward_weight(p, a.dx2, merged_heads(b.a), G(w.o), true);
    ops::linear_backward_input(p, a.dx2, W(w.o), merged_heads(a.da));
    ops::attention_backward(p, b.q, b.k, b.v, b.a, b.lse, a.da, a.dq, a.dk, a.dv, a.attn_scratch);
    ops::rope_backward(p, a.dq, a.dq, a.rope_table);
    ops::rope_backward(p, a.dk, a.dk, a.rope_table);
    ops::linear_backward_weight(p, merged_heads(a.dq), b.h1, G(w.q), true);
    ops::linear_backward_weight(p, merged_heads(a.dk), b.h1, G(w.k), true);
    ops::linear_backward_weight(p, merged_heads(a.dv), b.h1, G(w.v), true);
    ops::linear_backward_input(p, merged_heads(a.dq), W(w.q), a.dh1);
    ops::linear_backward_input(p, merged_heads(a.dk), W(w.k), a.dh1, true);
    ops::linear_backward_input(p, merged_heads(a.dv), W(w.v), a.dh1, true);
    ops::rmsnorm_backward(p, a.dh1, x, N(w.attn_norm), b.rstd1, dx, G(w.attn_norm), a.norm_scratch, true);
    ops::add(p, dx, a.dx2, dx);  // dx = dx2 + (through attention)
    std::swap(dy, dx);
  }
  // dy is now the gradient of the embedding's output; it adds into the same dE as the tied head.
  ops::embedding_backward(p, a.ids, dy, G(L.embed()));
}

}  // namespace vkm::model
