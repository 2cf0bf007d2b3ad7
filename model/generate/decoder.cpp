#include "model/generate/decoder.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <string>

#include "engine/error.hpp"
#include "engine/ops/cast.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/copy.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/embedding.hpp"
#include "engine/ops/kv_cache.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/matvec.hpp"
#include "engine/ops/rmsnorm.hpp"
#include "engine/ops/rope.hpp"
#include "engine/ops/swiglu.hpp"

namespace vkm::model {

struct Decoder::Buffers {
  std::unique_ptr<Arena> cache, device, host, weights;
  // The flat buffer the products read (params, or a copy cast to the weights' storage), and f32 copies of the
  // norms by entry index (rmsnorm takes f32 weights).
  Tensor matrices;
  std::vector<Tensor> norms;
  std::vector<Tensor> k_cache, v_cache;  // per layer [B, S, Hkv, D]
  Tensor rope_table;
  // Activations of B x chunk rows, viewed as [B, T, ...] for chunks of T tokens (decoding: T = 1). x carries the
  // residual stream; h is its normed copy; tmp a block's output before it is added. With f16 weights, in16 holds
  // the embedding and each linear layer's input rounded to f16.
  Tensor x, h, tmp, rstd, q, k, v, att, gate_up, act, attn_scratch, in16;
  Tensor last, last_normed, last_rstd, logits;  // the tail: each sequence's last row
  // Mapped memory the host writes between submissions (and reads the tokens from): a prefill chunk's ids and
  // the position of each (-1: padding); each sequence's last token (the sampler's output, the next step's
  // input) and its position; the sampler's seeds and seen tokens.
  Tensor ids, id_positions, tokens, positions, seeds, seen;
};

namespace {

using Alloc = std::function<Tensor(DType, Shape)>;

// Rows up to which matvec beats the tiled matmul: it reads each weight once per kMatvecRows rows.
constexpr int64_t kMatvecRowsMax = 2 * ops::kMatvecRows;
constexpr int64_t kMaxPrefillRows = 512;

void linear_rows(Program& p, const Tensor& x, const Tensor& w, const Tensor& y) {
  if (x.numel() / x.dim(-1) <= kMatvecRowsMax)
    ops::matvec(p, x, w, y);
  else
    ops::linear(p, x, w, y);
}

// The activations for B x T rows and the tail, from `alloc` (the same list sizes the arena and fills it).
template <class Buffers>
void plan_activations(const ModelConfig& c, int64_t B, int64_t T, int64_t S, DType weights, const Alloc& alloc,
                      Buffers& t) {
  const int64_t rows = B * T, C = c.hidden, qw = c.heads * c.head_dim, kvw = c.kv_heads * c.head_dim;
  auto f32 = [&](Shape s) { return alloc(DType::f32, std::move(s)); };
  t.rope_table = f32({S, c.head_dim / 2, 2});
  t.x = f32({rows, C}), t.h = f32({rows, C}), t.tmp = f32({rows, C}), t.rstd = f32({rows});
  t.q = f32({rows, qw}), t.k = f32({rows, kvw}), t.v = f32({rows, kvw}), t.att = f32({rows, qw});
  t.gate_up = f32({rows, 2 * c.ffn}), t.act = f32({rows, c.ffn});
  const Tensor q_shape{nullptr, 0, DType::f32, {B, T, c.heads, c.head_dim}};  // the scratch depends on the shape only
  t.attn_scratch = f32({ops::kv_attention_scratch_elems(q_shape, S)});
  t.last = f32({B, C}), t.last_normed = f32({B, C}), t.last_rstd = f32({B}), t.logits = f32({B, c.vocab});
  if (weights == DType::f16) t.in16 = alloc(DType::f16, {rows, std::max({C, qw, c.ffn})});
}

uint64_t planned_bytes(const std::function<void(const Alloc&)>& plan, uint64_t align) {
  uint64_t total = 0;
  plan([&](DType type, Shape s) {
    uint64_t n = dtype_size(type);
    for (int64_t d : s) n *= uint64_t(d);
    total += (n + align - 1) / align * align;
    return Tensor{};
  });
  return total;
}

uint64_t aligned(uint64_t bytes, uint64_t align) { return (bytes + align - 1) / align * align; }

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB"; }

template <class T>
std::span<T> mapped(const Tensor& t) {
  return {reinterpret_cast<T*>(t.buffer->mapped() + t.offset), size_t(t.numel())};
}

// Chunk sizes for prompts of up to P tokens: whole chunks of `cap`, after one power of two for the rest.
std::vector<int64_t> plan_chunks(int64_t P, int64_t cap) {
  std::vector<int64_t> chunks;
  int64_t rest = P;
  for (; rest > cap; rest -= cap) chunks.push_back(cap);
  chunks.insert(chunks.begin(), std::min(int64_t(std::bit_ceil(uint64_t(rest))), cap));
  return chunks;
}

// A float tensor's values (f32 or f16) read back as f32.
std::vector<float> read_f32(Context& ctx, const Tensor& t) {
  if (t.dtype == DType::f32) return ctx.read<float>(t);
  std::vector<float> v;
  for (uint16_t h : ctx.read<uint16_t>(t)) v.push_back(f16_to_f32(h));
  return v;
}

}  // namespace

void check_weights_storage(const DeviceInfo& d, DType type) {
  if (type != DType::f32 && type != DType::f16)
    throw Error("decoder: the weights must be f32 or f16, not " + std::string(dtype_name(type)));
  if (type == DType::f16 && !ops::has_16bit(d))
    throw Error("decoder: f16 weights need storageBuffer16BitAccess, shaderInt16 and shaderFloat16, which device '" +
                d.name + "' lacks; use f32 weights");
}

DType default_weights(const DeviceInfo& d) { return ops::has_16bit(d) ? DType::f16 : DType::f32; }

Decoder::Decoder(Context& ctx, const ParamLayout& layout, const Tensor& params, const DecoderOptions& o)
    : ctx_(ctx), layout_(layout), B_(o.batch), chunk_(o.prefill_chunk), sampling_(o.sampling),
      t_(std::make_unique<Buffers>()) {
  const ModelConfig& c = layout.config();
  S_ = o.context > 0 ? o.context : std::min<int64_t>(c.max_positions, 2048);
  if (B_ < 1 || chunk_ < 1) throw Error("decoder: the batch and the prefill chunk must be positive");
  if (S_ > c.max_positions)
    throw Error("decoder: a context of " + std::to_string(S_) + " positions exceeds the model's max_position_embeddings " +
                std::to_string(c.max_positions));
  if (o.cache != DType::f32 && o.cache != DType::f16) throw Error("decoder: the cache must be f32 or f16");
  if (!params || (params.dtype != DType::f32 && params.dtype != DType::f16) || params.numel() != layout.total_elems())
    throw Error("decoder: params " + params.describe() + " must be the flat f32 (or f16) buffer of " +
                std::to_string(layout.total_elems()) + " elements");
  const DType weights = o.weights.value_or(params.dtype);
  check_weights_storage(ctx.info(), weights);
  // Prefill rows (batch x chunk) bounded, so that activations and attention scratch stay a few MiB per layer
  // width whatever the batch.
  chunk_ = std::clamp<int64_t>(kMaxPrefillRows / B_, 1, std::min(chunk_, S_));
  const DeviceInfo& d = ctx.info();
  const uint64_t align = std::max<uint64_t>(256, d.min_storage_offset_alignment);
  const Shape cache_shape{B_, S_, c.kv_heads, c.head_dim};
  const uint64_t layer_cache = uint64_t(B_ * S_ * c.kv_heads * c.head_dim) * dtype_size(o.cache);
  const uint64_t cache = 2 * uint64_t(c.layers) * aligned(layer_cache, align);
  const uint64_t acts =
      planned_bytes([&](const Alloc& a) { plan_activations(c, B_, chunk_, S_, weights, a, *t_); }, align);
  // The decoder's own weights: a copy of the matrices where params are not in their storage, and the norms.
  const bool copy = params.dtype != weights;
  const uint64_t copy_bytes = copy ? aligned(uint64_t(layout.total_elems()) * dtype_size(weights), align) : 0;
  const uint64_t norm_bytes = uint64_t(2 * c.layers + 1) * aligned(uint64_t(c.hidden) * 4, align);
  uint64_t heap = 0;
  for (const auto& h : d.heaps) heap = std::max(heap, h.size);
  const std::string fix = "; use a shorter context or a smaller batch";
  if (layer_cache + d.min_storage_offset_alignment > d.max_storage_buffer_range)
    throw Error("decoder: one layer's cache of " + std::to_string(B_) + " sequences x " + std::to_string(S_) +
                " positions is " + mib(layer_cache) + ", more than one storage binding of '" + d.name + "' holds (" +
                mib(d.max_storage_buffer_range) + ")" + fix);
  if (cache + acts + copy_bytes + norm_bytes > heap)
    throw Error("decoder: the cache (" + mib(cache) + "), activations (" + mib(acts) + ") and weights (" +
                mib(copy_bytes + norm_bytes) + ") of " + std::to_string(B_) + " sequences x " + std::to_string(S_) +
                " positions exceed the largest memory heap of '" + d.name + "' (" + mib(heap) + ")" + fix);

  Buffers& t = *t_;
  const uint64_t block = std::max<uint64_t>(std::min<uint64_t>(cache, d.max_memory_allocation / align * align), align);
  t.cache = std::make_unique<Arena>(ctx, "kv cache", MemoryKind::device, block);
  for (int64_t l = 0; l < c.layers; ++l) {
    t.k_cache.push_back(t.cache->alloc(o.cache, cache_shape));
    t.v_cache.push_back(t.cache->alloc(o.cache, cache_shape));
  }
  t.device = std::make_unique<Arena>(ctx, "decoder activations", MemoryKind::device, std::max<uint64_t>(acts, align));
  plan_activations(
      c, B_, chunk_, S_, weights, [&](DType type, Shape s) { return t.device->alloc(type, std::move(s)); }, t);
  t.weights = std::make_unique<Arena>(ctx, "decoder weights", MemoryKind::device, norm_bytes);
  t.matrices = params;
  if (copy) {
    t.matrices = t.weights->alloc(weights, params.shape);
    Program cast(ctx, "decoder weights");
    ops::cast(cast, params, t.matrices);
    ctx.wait(ctx.submit(cast));
  }
  // Through the host: a norm's view of f16 params need not start where a binding may.
  t.norms.resize(layout.entries().size());
  for (size_t i = 0; i < t.norms.size(); ++i)
    if (layout.entries()[i].kind == ParamKind::norm) {
      t.norms[i] = t.weights->alloc(DType::f32, layout.entries()[i].shape);
      ctx.write(t.norms[i], read_f32(ctx, layout.view(params, i)));
    }
  t.host = std::make_unique<Arena>(ctx, "decoder state", MemoryKind::host, 1 << 16);
  t.ids = t.host->alloc(DType::i32, {B_ * chunk_});
  t.id_positions = t.host->alloc(DType::i32, {B_ * chunk_});
  t.tokens = t.host->alloc(DType::i32, {B_});
  t.positions = t.host->alloc(DType::i32, {B_});
  t.seeds = t.host->alloc(DType::u32, {B_});
  t.seen = t.host->alloc(DType::u32, {B_, ops::sample_seen_words(c.vocab)});
  ctx.write(t.rope_table, ops::rope_table(S_, c.head_dim, c.rope_theta));
  for (int64_t b = 0; b < B_; ++b) set_seed(b, uint32_t(b));
  reset();
}

Decoder::~Decoder() = default;

void Decoder::reset() {
  lengths_.assign(size_t(B_), 0);
  std::ranges::fill(mapped<uint32_t>(t_->seen), 0u);
}

void Decoder::set_seed(int64_t b, uint32_t seed) { mapped<uint32_t>(t_->seeds)[size_t(b)] = seed; }

const Tensor& Decoder::logits() const { return t_->logits; }
uint64_t Decoder::cache_bytes() const { return t_->cache->capacity(); }
uint64_t Decoder::activation_bytes() const { return t_->device->capacity(); }
uint64_t Decoder::weight_bytes() const {
  uint64_t norms = 0;
  for (const Tensor& n : t_->norms) norms += n ? n.bytes() : 0;
  return t_->matrices.bytes() + norms;
}

Tensor Decoder::weight(size_t index) const {
  return layout_.entries().at(index).kind == ParamKind::norm ? t_->norms[index] : layout_.view(t_->matrices, index);
}

Tensor Decoder::linear_input(Program& p, const Tensor& a) const {
  if (t_->matrices.dtype == DType::f32) return a;
  const Tensor rounded = t_->in16.flat().view(0, a.shape);
  ops::cast(p, a, rounded);
  return rounded;
}

void Decoder::record_body(Program& p, int64_t T, const Tensor& ids, const Tensor& positions) const {
  const ModelConfig& c = layout_.config();
  const ParamLayout& L = layout_;
  const Buffers& t = *t_;
  const int64_t rows = B_ * T, C = c.hidden, D = c.head_dim;
  auto W = [&](size_t i) { return weight(i); };
  auto input = [&](const Tensor& a) { return linear_input(p, a); };
  auto first = [&](const Tensor& all, Shape shape) { return all.flat().view(0, std::move(shape)); };
  const Tensor x = first(t.x, {B_, T, C}), h = first(t.h, {B_, T, C}), tmp = first(t.tmp, {B_, T, C});
  const Tensor rstd = first(t.rstd, {rows}), gate_up = first(t.gate_up, {B_, T, 2 * c.ffn});
  const Tensor act = first(t.act, {B_, T, c.ffn});
  const Tensor q = first(t.q, {B_, T, c.heads, D}), k = first(t.k, {B_, T, c.kv_heads, D});
  const Tensor v = first(t.v, {B_, T, c.kv_heads, D}), att = first(t.att, {B_, T, c.heads, D});
  auto merged = [](const Tensor& heads) { return heads.reshape({heads.dim(0), heads.dim(1), heads.dim(2) * heads.dim(3)}); };

  if (t.matrices.dtype == DType::f32) {
    ops::embedding(p, W(L.embed()), ids, x);
  } else {  // an f16 table gives f16 rows
    const Tensor rows16 = first(t.in16, x.shape);
    ops::embedding(p, W(L.embed()), ids, rows16);
    ops::cast(p, rows16, x);
  }
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerParams& w = L.layer(l);
    ops::rmsnorm(p, x, W(w.attn_norm), h, rstd, float(c.eps));
    const Tensor h_in = input(h);
    linear_rows(p, h_in, W(w.q), merged(q));
    linear_rows(p, h_in, W(w.k), merged(k));
    linear_rows(p, h_in, W(w.v), merged(v));
    ops::rope_at(p, q, q, t.rope_table, positions);
    ops::rope_at(p, k, k, t.rope_table, positions);
    ops::kv_append(p, k, v, t.k_cache[size_t(l)], t.v_cache[size_t(l)], positions);
    ops::kv_attention(p, q, t.k_cache[size_t(l)], t.v_cache[size_t(l)], positions, att, t.attn_scratch);
    linear_rows(p, input(merged(att)), W(w.o), tmp);
    ops::add(p, x, tmp, x);
    ops::rmsnorm(p, x, W(w.ffn_norm), h, rstd, float(c.eps));
    linear_rows(p, input(h), L.gate_up(t.matrices, l), gate_up);
    ops::swiglu_fused(p, gate_up, act);
    linear_rows(p, input(act), W(w.down), tmp);
    ops::add(p, x, tmp, x);
  }
}

void Decoder::record_tail(Program& p, const Tensor& hidden) const {
  const ModelConfig& c = layout_.config();
  const Buffers& t = *t_;
  ops::rmsnorm(p, hidden, weight(layout_.final_norm()), t.last_normed, t.last_rstd, float(c.eps));
  linear_rows(p, linear_input(p, t.last_normed), weight(layout_.head()), t.logits);
  ops::sample(p, t.logits, sampling_, t.seen, t.seeds, t.positions, t.tokens);
}

Program& Decoder::prefill_program(int64_t T, bool last) {
  std::unique_ptr<Program>& p = prefill_[{T, last}];
  if (p) return *p;
  p = std::make_unique<Program>(ctx_, "prefill " + std::to_string(B_) + "x" + std::to_string(T));
  const Buffers& t = *t_;
  record_body(*p, T, t.ids.view(0, {B_, T}), t.id_positions.view(0, {B_, T}));
  if (last) {
    // Each sequence's last row, (b, T - 1), gathered into [B, C] for the tail.
    const int64_t C = layout_.config().hidden;
    ops::copy_2d(*p, t.x.flat().view((T - 1) * C, {(B_ - 1) * T * C + C}), t.last, B_, C, T * C, C);
    record_tail(*p, t.last);
  }
  return *p;
}

std::vector<int32_t> Decoder::run(Program& p) {
  ctx_.wait(ctx_.submit(p));
  const std::span<const int32_t> tokens = mapped<const int32_t>(t_->tokens);
  return {tokens.begin(), tokens.end()};
}

std::vector<int32_t> Decoder::prefill(const std::vector<std::vector<int32_t>>& tokens) {
  const int64_t V = layout_.config().vocab;
  if (int64_t(tokens.size()) != B_)
    throw Error("decoder: prefill takes one token list per sequence, " + std::to_string(B_) + ", given " +
                std::to_string(tokens.size()));
  int64_t P = 0;
  for (int64_t b = 0; b < B_; ++b) {
    const auto& seq = tokens[size_t(b)];
    const std::string which = "decoder: sequence " + std::to_string(b);
    if (seq.empty()) throw Error(which + ": nothing to prefill (an empty prompt)");
    for (int32_t id : seq)
      if (id < 0 || id >= V)
        throw Error(which + ": token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                    std::to_string(V));
    if (length(b) + int64_t(seq.size()) > S_)
      throw Error(which + " would hold " + std::to_string(length(b) + int64_t(seq.size())) +
                  " tokens, more than the context of " + std::to_string(S_));
    P = std::max<int64_t>(P, int64_t(seq.size()));
  }
  Buffers& t = *t_;
  const std::span<uint32_t> seen = mapped<uint32_t>(t.seen);
  const int64_t words = t.seen.dim(1);
  for (int64_t b = 0; b < B_; ++b)
    for (int32_t id : tokens[size_t(b)]) seen[size_t(b * words + id / 32)] |= 1u << (id % 32);

  // Sequences end together at the last column (where the sampler reads them); shorter ones are padded in front.
  const std::vector<int64_t> chunks = plan_chunks(P, chunk_);
  int64_t padded = 0;
  for (int64_t T : chunks) padded += T;
  const std::span<int32_t> ids = mapped<int32_t>(t.ids), id_positions = mapped<int32_t>(t.id_positions);
  const std::span<int32_t> positions = mapped<int32_t>(t.positions);
  std::vector<int32_t> next;
  for (int64_t col = 0, i = 0; i < int64_t(chunks.size()); col += chunks[size_t(i)], ++i) {
    const int64_t T = chunks[size_t(i)];
    const bool last = i + 1 == int64_t(chunks.size());
    for (int64_t b = 0; b < B_; ++b) {
      const auto& seq = tokens[size_t(b)];
      const int64_t offset = padded - int64_t(seq.size());  // columns of padding in front of sequence b
      for (int64_t j = 0; j < T; ++j) {
        const int64_t at = col + j - offset;
        ids[size_t(b * T + j)] = at >= 0 ? seq[size_t(at)] : 0;
        id_positions[size_t(b * T + j)] = at >= 0 ? int32_t(length(b) + at) : -1;
      }
      // The sampler draws the token after the sequence's last, and advances to it.
      if (last) positions[size_t(b)] = int32_t(length(b) + int64_t(seq.size()) - 1);
    }
    Program& p = prefill_program(T, last);
    if (last)
      next = run(p);
    else
      ctx_.wait(ctx_.submit(p));
  }
  for (int64_t b = 0; b < B_; ++b) lengths_[size_t(b)] += int64_t(tokens[size_t(b)].size());
  return next;
}

Program& Decoder::step_program(bool profile) {
  std::unique_ptr<Program>& p = step_[profile];
  if (!p) {
    p = std::make_unique<Program>(ctx_, "decode " + std::to_string(B_), profile);
    record_body(*p, 1, t_->tokens.reshape({B_, 1}), t_->positions.reshape({B_, 1}));
    record_tail(*p, t_->x.flat().view(0, {B_, layout_.config().hidden}));
  }
  for (int64_t& n : lengths_) n = std::min(n + 1, S_);
  return *p;
}

std::vector<int32_t> Decoder::step() { return run(step_program(false)); }

std::vector<DispatchTiming> Decoder::profile_step() {
  Program& p = step_program(true);
  run(p);
  return p.timings();
}

}  // namespace vkm::model
