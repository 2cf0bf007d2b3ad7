#pragma once
// Model folders as Hugging Face transformers writes a LlamaForCausalLM: config.json and model.safetensors
// (or model.safetensors.index.json and its shards), tensors under the LLaMA names of model::ParamLayout.
// vkmind's rotary embedding pairs dimension i with i + head_dim/2 (rotate_half), as transformers does, so
// the q and k projections are stored as they are.
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

#include "engine/dtype.hpp"
#include "model/config.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::io {

// "float32", "float16", "bfloat16": config.json's torch_dtype for a float dtype.
std::string_view torch_dtype_name(DType t);

// Writes `dir`/config.json (model::config_to_json with torch_dtype) and `dir`/model.safetensors (metadata
// {"format": "pt"}, which transformers requires), creating `dir` if needed. Tensors in layout order, stored as
// `dtype` (f32, f16 or bf16; round to nearest even); lm_head.weight is omitted when the embeddings are tied.
// `flat` is the layout's flat buffer (ParamLayout::total_elems() values).
void save_model(const std::filesystem::path& dir, const model::ParamLayout& layout, std::span<const float> flat,
                DType dtype = DType::f32);

struct ModelFiles {
  model::ModelConfig config;
  std::vector<float> params;  // the flat buffer of ParamLayout(config), padding zero
};

// Reads config.json plus model.safetensors, or model.safetensors.index.json and the shards it names; tensors
// in f32, f16 or bf16. Every tensor of the layout must be present with its shape (the error names the file and
// the tensor). lm_head.weight is accepted with tied embeddings only when it equals the embedding (as in
// MiniMind's own checkpoints, which store both); rotary inv_freq buffers are ignored; any other tensor is an
// error naming it. A missing folder or file: an error naming it. A config asking for more layers than the files
// hold tensors is refused before anything is sized by it.
// A GGUF file (see gguf_model.hpp) is read as well, so every command taking --model accepts one.
ModelFiles load_model(const std::filesystem::path& dir);

// The tokenizer of a model: `tokenizer` when it is given (tokenizer.json or a folder holding one), else the one a
// GGUF file embeds, else the model folder's tokenizer.json. None of them: an error saying so.
tok::Tokenizer load_model_tokenizer(const std::filesystem::path& model, const std::filesystem::path& tokenizer = {});

}  // namespace vkm::io
