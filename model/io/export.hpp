#pragma once
// Models leaving vkmind: a Hugging Face folder that transformers loads as LlamaForCausalLM without custom code,
// or a GGUF file for llama.cpp and ollama (gguf_model.hpp); export_model is `vkmind export`.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "engine/dtype.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::io {

// Writes into `dir` (created if needed; these files replaced, others left alone, as save_pretrained does):
//   config.json             model::config_to_json with torch_dtype and the tokenizer's bos/eos/pad ids
//   model.safetensors       save_model's, stored as `dtype` (f32, f16, bf16)
//   tokenizer.json, tokenizer_config.json (ChatML chat template; Tokenizer::save)
//   generation_config.json  the special ids and MiniMind's sampling defaults
// The tokenizer must not have more tokens than the model's vocab_size.
void export_hf(const std::filesystem::path& dir, const model::ParamLayout& layout, std::span<const float> flat,
               const tok::Tokenizer& tokenizer, DType dtype = DType::f32);

struct ExportOptions {
  std::filesystem::path model;      // a model folder or GGUF file (load_model)
  std::filesystem::path out;        // the folder (hf) or file (gguf) to write
  std::string format;               // "hf" or "gguf"
  std::string dtype;                // "f32", "f16", "bf16", or "q8_0" for gguf; empty: f32 for hf, f16 for gguf
  std::filesystem::path tokenizer;  // empty: the model's own (load_model_tokenizer)
  std::string name;                 // GGUF general.name; empty: the model's file name
};
struct ExportSummary {
  std::string dtype;  // as written
  int64_t parameters = 0;
  int32_t tokens = 0;
};
// Loads the model and its tokenizer and writes them as options.format asks. Errors name the flag
// (--format, --dtype) or the file.
ExportSummary export_model(const ExportOptions& options);

}  // namespace vkm::io
