#pragma once
// What a training run leaves in its folder, read back for the report. A run folder holds
//   metrics.jsonl         {"kind":"train","step":...} and {"kind":"val","step":...} lines, appended as it trains
//   run.json              what was run: command, device, parameters, config, options
//   tokenizer_stats.json  (optional) the tokenizer's training statistics, any keys
//   samples.jsonl         (optional) {"prompt":...,"answer":...} lines
// and a pipeline's folder holds its stages one level down (RUN/pretrain, RUN/sft), each a run folder itself.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vkm::report {

constexpr double kMissing = NAN;  // a value a line does not have (or has as null: JSON has no NaN)

// One optimizer step as the trainer logged it.
struct TrainRecord {
  int64_t step = 0;
  double total_steps = kMissing, epoch = kMissing, tokens = kMissing, loss = kMissing, lr = kMissing,
         grad_norm = kMissing, tokens_per_s = kMissing, elapsed_s = kMissing;
};
// One validation pass.
struct ValRecord {
  int64_t step = 0;
  double tokens = kMissing, loss = kMissing, ppl = kMissing;
};

struct Metrics {
  std::vector<TrainRecord> train;  // ascending steps; a step logged again (a resumed run) by its last line
  std::vector<ValRecord> val;
  double first_time = kMissing;    // "time" (Unix seconds) of the first line, where the trainer writes one
  int64_t last_step() const;       // the highest step of either kind; 0 when there is none
};

// Reads a metrics.jsonl. A line that is not a JSON object with a "kind" and an integer "step" (a run killed
// mid-write leaves half a line), or that has a value of the wrong type, is skipped with a warning
// "FILE:LINE: why"; unknown kinds and keys are ignored. Throws vkm::Error naming the file if it cannot be read.
Metrics read_metrics(const std::filesystem::path& file, std::vector<std::string>& warnings);

// One folder of a run that holds any of the files above: the run folder itself, or a stage one level down.
struct Folder {
  std::string name;  // the folder's own name
  std::filesystem::path dir;
  bool stage = false;                   // it trained: metrics.jsonl or run.json is there
  Metrics metrics;
  nlohmann::json info;                  // run.json, or null
  nlohmann::json tokenizer_stats;       // tokenizer_stats.json, or null
  std::vector<nlohmann::json> samples;  // samples.jsonl's objects, in order
  double start_time = 0;                // Unix seconds: the first metric's "time", else run.json's or the
                                        // first file's modification time
};

struct Run {
  std::filesystem::path dir;
  std::string name;                   // the run folder's own name
  std::vector<Folder> folders;        // in order of start_time (then name)
  std::vector<std::string> warnings;  // lines and files passed over, each naming the file
  std::vector<const Folder*> stages() const;
};

// Reads a run folder and the folders one level down that hold any of the files above. Missing files are
// simply absent; malformed optional files and lines give warnings. Throws vkm::Error naming the folder when
// it cannot be listed or when neither it nor a folder inside holds any of these files, and naming
// metrics.jsonl when that exists but cannot be read.
Run load_run(const std::filesystem::path& dir);

}  // namespace vkm::report
