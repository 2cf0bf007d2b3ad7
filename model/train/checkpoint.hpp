#pragma once
// A training checkpoint: everything a run needs to continue exactly as if it had never stopped.
//
//   DIR/config.json             the model's Hugging Face config
//   DIR/model.safetensors       fp32 weights with LLaMA names (a model folder: chat, eval and export read it)
//   DIR/optimizer.safetensors   AdamW's m and v, each one flat fp32 tensor in the parameter layout's order
//   DIR/trainer_state.json      step, data cursor, tokens, elapsed time, the options that must not change,
//                               and the size and FNV-1a 64 checksum of every file above
//   DIR/tokenizer.json, tokenizer_config.json
// It is written into DIR.tmp and renamed into place (the previous one moved to DIR.old first and removed last),
// so a checkpoint is complete or absent whenever the process dies; load() falls back to DIR.old when a death
// came between the two renames.
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/ops/grad_norm.hpp"
#include "model/config.hpp"
#include "model/data/batcher.hpp"
#include "model/params.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace vkm::train {

struct TrainerState {
  int64_t step = 0;         // optimizer steps completed
  int64_t total_steps = 0;
  data::Cursor cursor;      // where the next step's first batch begins
  uint64_t tokens = 0;      // training tokens consumed
  double elapsed_s = 0;     // training time before this checkpoint, over all sessions
  nlohmann::json options;   // what must be equal to resume exactly (trainer.cpp decides)
  ops::LossScaleState loss_scale;  // mixed precision's dynamic loss scale (unused in fp32)
};

struct Checkpoint {
  model::ModelConfig config;
  TrainerState state;
  std::vector<float> params, m, v;  // flat, in ParamLayout(config) order
};

void save_checkpoint(const std::filesystem::path& dir, const model::ParamLayout& layout, std::span<const float> params,
                     std::span<const float> m, std::span<const float> v, const TrainerState& state,
                     const tok::Tokenizer& tokenizer);

// Throws vkm::Error naming the file for a missing, truncated or corrupt checkpoint (a checksum that does not
// match, a tensor of the wrong size).
Checkpoint load_checkpoint(const std::filesystem::path& dir);

// Where a checkpoint actually is: DIR, or DIR.old after an interrupted replacement; empty when neither.
std::filesystem::path find_checkpoint(const std::filesystem::path& dir);

// FNV-1a 64 of a file's bytes, as 16 hex digits.
std::string file_checksum(const std::filesystem::path& path);

}  // namespace vkm::train
