#pragma once
// A vkmind model as a llama.cpp GGUF file of architecture "llama", and back.
//
// Names follow llama.cpp (token_embd, blk.N.attn_q, ..., output_norm, output); the embedding doubles as the
// output when `output.weight` is absent (tied). llama.cpp applies rotary embeddings to adjacent pairs
// (2i, 2i+1) where transformers and vkmind pair i with i + head_dim/2, so the rows of attn_q and attn_k are
// permuted within each head on export, as llama.cpp's convert_hf_to_gguf.py does, and back on import.
// Norms are always F32; with Q8_0 a matrix whose rows are not whole blocks of 32 is stored as F16.
// The tokenizer goes in as tokenizer.ggml.model "gpt2" (byte-level BPE: tokens, token types, merges, special
// token ids) with the ChatML chat template.
#include <filesystem>
#include <span>
#include <string_view>

#include "model/io/gguf.hpp"
#include "model/io/model_files.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::io {

// Writes `path` through a temporary file renamed into place. `type`: F32, F16, BF16 or Q8_0 for the matrices.
// Throws vkm::Error when the tokenizer does not fit the model or uses what GGUF's gpt2 tokenizer cannot express.
void save_gguf(const std::filesystem::path& path, const model::ParamLayout& layout, std::span<const float> flat,
               const tok::Tokenizer& tokenizer, GgmlType type = GgmlType::f16, std::string_view name = "vkmind");

// True when `path` is a regular file starting with the GGUF magic.
bool is_gguf(const std::filesystem::path& path);

// The model of a GGUF file of architecture llama with F32, F16, BF16 or Q8_0 tensors (Q8_0 dequantized), the
// q/k permutation undone. What vkmind cannot run (another architecture, rope scaling, experts, a missing or
// unknown tensor) is refused with an error naming the key or tensor.
ModelFiles load_gguf(const std::filesystem::path& path);

// The byte-level BPE tokenizer a GGUF file embeds (tokenizer.ggml.model "gpt2", pre-tokenizer gpt-2 or qwen2);
// errors name the file.
tok::Tokenizer load_gguf_tokenizer(const std::filesystem::path& path);

}  // namespace vkm::io
