#pragma once
// Sampling the next token on the device (shaders/sample.comp), so that decoding never waits for the host:
// the chosen ids land where the next step's embedding reads them, and the host only reads them to stream.
// The rules are Hugging Face generate()'s, applied in its order: repetition penalty, temperature, top-k,
// top-p, then a multinomial draw (or argmax when greedy). See the shader for the exact definitions.
#include <cstdint>

#include "engine/program.hpp"

namespace vkm::ops {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy, the most likely token (smallest id among equals)
  int64_t top_k = 0;                // keep the k most likely tokens (ties at the k-th included); 0: all
  float top_p = 1.0f;               // then the fewest most likely reaching this probability, in (0, 1]; 1: all
  float repetition_penalty = 1.0f;  // seen tokens' logits divided by it where positive, multiplied where negative
};

// u32 words of `seen` per sequence: one bit per token.
int64_t sample_seen_words(int64_t vocab);

// The uniform number in [0, 1) that draws the token at `position` of a sequence seeded with `seed`: 24 bits of
// a 32-bit integer hash of the two, the same on every device and on the host.
float sample_uniform(uint32_t seed, uint32_t position);

// For each sequence b of logits f32 [B, V]: picks the token at position positions[b] + 1 from logits[b] under
// `params`, with the seen tokens seen[b] (u32 [B, sample_seen_words(V)]) penalized and the draw's uniform
// number from seeds[b] (u32 [B]) and that position; then writes it to tokens[b] (i32 [B]), marks it seen and
// advances positions[b] (i32 [B]) by one. Sequences are independent: one's result never depends on the others.
void sample(Program& p, const Tensor& logits, const SamplingParams& params, const Tensor& seen, const Tensor& seeds,
            const Tensor& positions, const Tensor& tokens);

}  // namespace vkm::ops
