#pragma once
// Inference with a key/value cache: the MiniMind2 / LLaMA forward for generation, recorded through the engine's
// ops (the weights f32 or f16, activations f32, the cache f32 or f16).
//
// A Decoder holds `batch` sequences side by side, each with its own length, in one cache [B, S, Hkv, D] per
// layer. prefill() appends tokens to every sequence and runs them through the model in chunks of up to
// prefill_chunk tokens per sequence (one submission each; sequences of different lengths are aligned at their
// ends, the shorter ones padded in front with tokens marked as padding, which no op keeps), then samples each
// sequence's next token. step() is one decoding step for all sequences: a program recorded once and
// resubmitted as is, because everything that changes lives on the device: each sequence's position, the
// token it embeds (written there by the previous sample), the sampler's seen tokens and seeds. Its attention
// walks the cache up to each sequence's position and no further (ops::kv_attention). The host only reads the
// sampled tokens back, from mapped memory, to stream them.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "engine/ops/sample.hpp"
#include "engine/program.hpp"
#include "model/params.hpp"

namespace vkm::model {

struct DecoderOptions {
  int64_t batch = 1;             // sequences decoded side by side
  int64_t context = 0;           // cache positions per sequence; 0: max_position_embeddings, at most 2048
  DType cache = DType::f32;      // f32, or f16: half the memory, keys and values rounded once when appended
  // The matrices' storage (every linear layer, the embedding and the head; RMSNorm weights stay f32): f32, or
  // f16, which halves the bytes each step reads; unset: the params' own. With f16 the inputs of the linear
  // layers are rounded to f16 too, in prefill and in steps alike, so that both compute the same products
  // (f16 x f16, summed in fp32).
  std::optional<DType> weights;
  int64_t prefill_chunk = 128;   // prompt tokens per sequence and submission, at most (and 512 / batch)
  ops::SamplingParams sampling;  // temperature 0: greedy
};

// Throws vkm::Error saying what device `d` lacks when it cannot hold weights of `type`: f32 always can, f16
// needs 16-bit storage and arithmetic (as ops::has_16bit), other types are refused.
void check_weights_storage(const DeviceInfo& d, DType type);
// The storage to decode with when none is asked for (`--weights auto`): f16 where device `d` has it (half the
// bytes per token, the same answers: docs/BENCHMARKS.md, "generate"), else f32.
DType default_weights(const DeviceInfo& d);

class Decoder {
 public:
  // params: the model's flat buffer (ParamLayout) on this device, f32 or f16; it must outlive the decoder. The
  // matrices are read from it where it is in the weights' storage, else from a copy cast to it (give f16 params
  // for f16 weights to hold the weights only once). Sizes the cache and activations up front and throws
  // vkm::Error, naming them, when they exceed the device's memory.
  Decoder(Context& ctx, const ParamLayout& layout, const Tensor& params, const DecoderOptions& options = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  int64_t batch() const { return B_; }
  int64_t context() const { return S_; }
  const ParamLayout& layout() const { return layout_; }

  // Tokens in sequence b's cache. The last sampled token is not among them until the next step embeds it.
  int64_t length(int64_t b) const { return lengths_.at(size_t(b)); }
  // Empties every sequence (the cache is overwritten, not cleared) and its seen tokens.
  void reset();
  // The seed of sequence b's draws (default: b). A draw depends only on the seed, the position and the logits.
  void set_seed(int64_t b, uint32_t seed);

  // Appends tokens[b] (one list per sequence, none empty, each id in [0, vocab)) to sequence b and samples its
  // next token, which is returned (and marked seen, as the tokens given are). Throws when a sequence would
  // outgrow the context.
  std::vector<int32_t> prefill(const std::vector<std::vector<int32_t>>& tokens);
  // Embeds each sequence's last sampled token and samples the next. A sequence already at the context's end
  // decodes nothing useful (its cache cannot grow): callers stop it at length() == context().
  std::vector<int32_t> step();

  // The logits f32 [B, V] the last prefill or step sampled from.
  const Tensor& logits() const;
  // One step() through a program recorded with GPU timestamps: each dispatch's time, in recording order.
  std::vector<DispatchTiming> profile_step();

  // Bytes of the cache and of the activations the decoder allocated.
  uint64_t cache_bytes() const;
  uint64_t activation_bytes() const;
  // Bytes of the weights the decoder reads: the matrices (params, or its copy) and its f32 copy of the norms.
  uint64_t weight_bytes() const;

 private:
  struct Buffers;  // every tensor (decoder.cpp)
  // The model over T tokens of every sequence, ids and their positions i32 [B, T] (-1: padding); leaves the
  // hidden states in the activations' first B x T rows.
  void record_body(Program& p, int64_t T, const Tensor& ids, const Tensor& positions) const;
  // Final norm, head and sampling, from the last hidden state of each sequence.
  void record_tail(Program& p, const Tensor& hidden) const;
  Program& prefill_program(int64_t T, bool last);
  // The decoding step (recorded on first use), counting the token it will embed into the lengths.
  Program& step_program(bool profile);
  std::vector<int32_t> run(Program& p);
  // Entry `index` of the layout: from the matrices, or (a norm) from the f32 copy of the norms.
  Tensor weight(size_t index) const;
  // A linear layer's input in the weights' storage: `a` itself, or `a` rounded to f16 into a scratch.
  Tensor linear_input(Program& p, const Tensor& a) const;

  Context& ctx_;
  const ParamLayout& layout_;
  int64_t B_, S_, chunk_;
  ops::SamplingParams sampling_;
  std::unique_ptr<Buffers> t_;
  std::vector<int64_t> lengths_;
  std::map<std::pair<int64_t, bool>, std::unique_ptr<Program>> prefill_;  // by (chunk, samples at its end)
  std::unique_ptr<Program> step_[2];  // plain, profiled
};

}  // namespace vkm::model
