#pragma once
// Rotary position embedding (shaders/rope.comp), the LLaMA / MiniMind "rotate_half" convention: in each head
// of D elements, element i < D/2 pairs with element i + D/2, and the pair of the token at position `pos`
// turns by the angle pos * inv_freq[i], with inv_freq[i] = theta^(-2i/D):
//   y[i] = x[i] cos - x[i + D/2] sin,   y[i + D/2] = x[i + D/2] cos + x[i] sin.
// The cos and sin come from a table computed once on the host (rope_table), in double and rounded to f32.
#include <optional>
#include <vector>

#include "engine/program.hpp"

namespace vkm::ops {

constexpr double kRopeTheta = 1e6;  // MiniMind2's rope_theta

// YaRN context extension (Peng et al. 2023), computed as transformers' _compute_yarn_parameters and
// MiniMind's precompute_freqs_cis do: pair i's frequency becomes inv_freq[i] * (1 - ramp_i + ramp_i / factor),
// where ramp rises linearly from 0 at pair `low` to 1 at pair `high`; low = floor of the (fractional) pair
// index that turns beta_fast times over original_max_position positions, high = ceil of the one that turns
// beta_slow times, clamped to [0, D/2 - 1] (transformers clamps high to D - 1 instead: the same table unless
// original_max_position is in the millions). cos and sin are both scaled by the attention factor.
// Unlike MiniMind, which applies YaRN only when its table is longer than original_max_position, a table
// made with these parameters is always scaled: its frequencies do not depend on its length.
struct RopeYarn {
  double factor = 16;                    // the context's extension; MiniMind2: 2048 -> 32768 positions
  int64_t original_max_position = 2048;  // the context the model was trained for
  double beta_fast = 32, beta_slow = 1;  // rotations bounding the ramp (the paper's alpha, beta)
  // Unset: 0.1 ln(factor) + 1, the paper's and transformers' default; MiniMind2's config sets 1.0.
  std::optional<double> attention_factor;
};

// Pair i's frequency (radians per position), i < head_dim / 2.
std::vector<double> rope_inv_freq(int64_t head_dim, double theta = kRopeTheta,
                                  const std::optional<RopeYarn>& yarn = std::nullopt);

// The table rope() reads, f32 [positions, head_dim / 2, 2]: (cos, sin) of pos * inv_freq[i], times YaRN's
// attention factor. Upload it once into an f32 tensor of that shape; it serves every layer, q and k.
std::vector<float> rope_table(int64_t positions, int64_t head_dim, double theta = kRopeTheta,
                              const std::optional<RopeYarn>& yarn = std::nullopt);

// y = rope(x) for x, y [B, T, H, D] of one dtype (f32, f16 or bf16; arithmetic in fp32), the token t of every
// sequence at position start_pos + t (start_pos > 0: decoding after cached tokens). q [B,T,Hq,D] and
// k [B,T,Hkv,D] are two calls. y may be x itself (in place) but must not partly overlap it. table: from
// rope_table for this D, with at least start_pos + T positions.
void rope(Program& p, const Tensor& x, const Tensor& y, const Tensor& table, int64_t start_pos = 0);

// rope for decoding, where positions live on the device (a recorded program serves every step): the token t of
// sequence b is at position positions[b, t], positions i32 [B, T]. A row whose position lies outside the table
// (padding, marked -1; a sequence past its context) becomes zeros. table: rope_table with every position the
// sequences may reach. Otherwise as rope.
void rope_at(Program& p, const Tensor& x, const Tensor& y, const Tensor& table, const Tensor& positions);

// The backward: dx = Rᵀ dy, each pair turned back by its angle (rope's transpose, with the same table).
// Same shapes and rules as rope.
void rope_backward(Program& p, const Tensor& dy, const Tensor& dx, const Tensor& table, int64_t start_pos = 0);

}  // namespace vkm::ops
