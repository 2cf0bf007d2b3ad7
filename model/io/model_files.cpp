#include "model/io/model_files.hpp"

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/io/float_codec.hpp"
#include "model/io/gguf_model.hpp"
#include "model/io/safetensors.hpp"

namespace vkm::io {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kConfigFile = "config.json";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr std::string_view kHeadName = "lm_head.weight";

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), std::streamsize(text.size()));
  out.close();
  if (!out) throw Error(path.string() + ": cannot write (disk full or no permission?)");
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The shards of a sharded checkpoint and the tensors each holds, from the index's weight_map.
std::map<std::string, std::set<std::string>> read_index(const fs::path& path) {
  json j;
  try {
    j = json::parse(read_text(path));
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(path.string() + ": no 'weight_map' object");
  std::map<std::string, std::set<std::string>> shards;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    if (!file.is_string()) throw Error(path.string() + ": weight_map entry is not a file name, tensor " + tensor);
    const std::string name = file.get<std::string>();
    // Shards are files beside the index: no folders, nothing outside the model folder.
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      throw Error(path.string() + ": shard name '" + name + "' is not a file in the model folder, tensor " + tensor);
    shards[name].insert(tensor);
  }
  return shards;
}

// A checkpoint's tensors, from one file or the shards of an index, each checked against the index.
struct Weights {
  std::vector<SafetensorsFile> files;
  std::map<std::string, std::pair<const SafetensorsFile*, const TensorRecord*>> tensors;
};

Weights open_weights(const fs::path& dir, const fs::path& listing,
                     const std::map<std::string, std::set<std::string>>& shards) {
  Weights w;
  w.files.reserve(shards.size());  // the map below points into it
  for (const auto& [name, listed] : shards) {
    const SafetensorsFile& file = w.files.emplace_back(SafetensorsFile::open(dir / name));
    auto fail = [&](const std::string& what, const std::string& tensor) {
      throw Error(file.path().string() + ": " + what + ", tensor " + tensor);
    };
    for (const TensorRecord& t : file.tensors()) {
      if (!listed.empty() && !listed.count(t.name))
        fail("not listed for this shard in " + listing.filename().string(), t.name);
      if (!w.tensors.emplace(t.name, std::pair{&file, &t}).second)
        fail("the tensor is also in " + w.tensors[t.name].first->path().string(), t.name);
    }
    for (const std::string& tensor : listed)
      if (!file.find(tensor)) fail("missing, though " + listing.filename().string() + " lists it here", tensor);
  }
  return w;
}

// The flat buffer of `layout` from the checkpoint's tensors, all checked before anything is allocated.
std::vector<float> read_weights(const model::ParamLayout& layout, const fs::path& listing, const Weights& w) {
  const bool tied = layout.config().tie_embeddings;
  for (const auto& [name, found] : w.tensors) {
    const auto& [file, t] = found;
    auto fail = [&](const std::string& what) { throw Error(file->path().string() + ": " + what + ", tensor " + name); };
    if (name.ends_with("rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
    if (!is_float_dtype(t->dtype))
      fail(std::string(safetensors_dtype_name(t->dtype)) + " is not a float dtype (F32, F16, BF16)");
    const bool tied_head = tied && name == kHeadName;
    const model::ParamEntry* e = tied_head ? &layout.entries()[layout.embed()] : nullptr;
    for (const auto& entry : layout.entries())
      if (entry.name == name) e = &entry;
    if (!e) fail("unknown tensor (not part of a LLaMA model with this config.json)");
    if (t->shape != e->shape) fail("shape " + shape_string(t->shape) + ", the config needs " + shape_string(e->shape));
  }
  for (const auto& e : layout.entries())
    if (!w.tensors.count(e.name)) throw Error(listing.string() + ": missing tensor " + e.name);

  std::vector<float> flat(size_t(layout.total_elems()), 0.0f);
  for (const auto& e : layout.entries()) {
    const TensorRecord& t = *w.tensors.at(e.name).second;
    decode_floats(t.dtype, t.bytes, std::span<float>(flat).subspan(size_t(e.offset), size_t(e.numel())));
  }
  if (const auto head = w.tensors.find(std::string(kHeadName)); tied && head != w.tensors.end()) {
    const auto& [file, t] = head->second;
    const model::ParamEntry& embed = layout.entries()[layout.embed()];
    if (file->read_f32(*t) != std::vector<float>(flat.begin() + embed.offset, flat.begin() + embed.offset + embed.numel()))
      throw Error(file->path().string() +
                  ": tie_word_embeddings is true but lm_head.weight differs from model.embed_tokens.weight, tensor " +
                  std::string(kHeadName));
  }
  return flat;
}

}  // namespace

std::string_view torch_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    default: throw Error("model weights are stored as f32, f16 or bf16, not " + std::string(dtype_name(t)));
  }
}

void save_model(const fs::path& dir, const model::ParamLayout& layout, std::span<const float> flat, DType dtype) {
  if (flat.size() != size_t(layout.total_elems()))
    throw Error("save_model: the parameter buffer has " + std::to_string(flat.size()) + " values, the layout " +
                std::to_string(layout.total_elems()));
  auto config = nlohmann::ordered_json::parse(model::config_to_json(layout.config()));
  config["torch_dtype"] = torch_dtype_name(dtype);

  std::vector<std::vector<uint8_t>> converted;  // one buffer per tensor when not f32
  std::vector<TensorRecord> records;
  for (const model::ParamEntry& e : layout.entries()) {
    const auto values = flat.subspan(size_t(e.offset), size_t(e.numel()));
    std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes());
    if (dtype != DType::f32) bytes = converted.emplace_back(encode_floats(dtype, values));
    records.push_back({e.name, dtype, e.shape, bytes});
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create the model folder: " + ec.message());
  write_text(dir / kConfigFile, config.dump(2) + "\n");
  write_safetensors(dir / kWeightsFile, records, {{"format", "pt"}});
}

ModelFiles load_model(const fs::path& dir) {
  if (!fs::exists(dir)) throw Error(dir.string() + ": no such model folder");
  if (is_gguf(dir)) return load_gguf(dir);
  if (!fs::is_directory(dir))
    throw Error(dir.string() + ": not a model folder (config.json with model.safetensors) or a GGUF file");
  const fs::path config_path = dir / kConfigFile;
  if (!fs::exists(config_path)) {
    const bool run_folder = fs::exists(dir / "model" / kConfigFile);  // what `vkmind pretrain --out` writes
    throw Error(config_path.string() + ": missing (the model folder needs config.json" +
                (run_folder ? "; the run's model is " + (dir / "model").string() + ")" : ")"));
  }
  ModelFiles m{model::load_config(config_path.string()), {}};
  Weights w;
  fs::path listing = dir / kWeightsFile;
  if (fs::exists(listing)) {
    w = open_weights(dir, listing, {{kWeightsFile, {}}});
  } else if (listing = dir / kIndexFile; fs::exists(listing)) {
    w = open_weights(dir, listing, read_index(listing));
  } else {
    throw Error(dir.string() + ": no " + kWeightsFile + " or " + kIndexFile + " in the model folder");
  }
  // A config asking for more tensors than the files hold is refused before its layout is built.
  if (m.config.layers > int64_t(w.tensors.size()))
    throw Error(listing.string() + ": the config's " + std::to_string(m.config.layers) + " layers need more than the " +
                std::to_string(w.tensors.size()) + " tensors the weights hold");
  m.params = read_weights(model::ParamLayout(m.config), listing, w);
  return m;
}

tok::Tokenizer load_model_tokenizer(const fs::path& model, const fs::path& tokenizer) {
  if (!tokenizer.empty()) return tok::Tokenizer::load(tokenizer);
  if (is_gguf(model)) return load_gguf_tokenizer(model);
  if (fs::exists(model / "tokenizer.json")) return tok::Tokenizer::load(model / "tokenizer.json");
  throw Error(model.string() + ": no tokenizer.json beside the model; name one with --tokenizer");
}

}  // namespace vkm::io
