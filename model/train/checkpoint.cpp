#include "model/train/checkpoint.hpp"

#include <cstdio>
#include <fstream>

#include "engine/error.hpp"
#include "model/io/model_files.hpp"
#include "model/io/safetensors.hpp"

namespace vkm::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
// The files whose checksums trainer_state.json records.
constexpr const char* kChecked[] = {"config.json", "model.safetensors", kOptimizerFile, "tokenizer.json"};

fs::path with_suffix(const fs::path& dir, const char* suffix) {
  return dir.parent_path() / (dir.filename().string() + suffix);
}

std::span<const uint8_t> as_bytes(std::span<const float> v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()};
}

nlohmann::json cursor_json(const data::Cursor& c) {
  return {{"epoch", c.epoch}, {"position", c.position}, {"offset", c.offset}};
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.close();
  if (!f) throw Error(path.string() + ": cannot write (disk full or no permission?)");
}

// The flat tensor `name` of the optimizer file, `n` elements.
std::vector<float> flat_tensor(const io::SafetensorsFile& file, const fs::path& path, const char* name, size_t n) {
  const io::TensorRecord* t = file.find(name);
  if (!t) throw Error(path.string() + ": tensor '" + name + "' is missing");
  std::vector<float> v = file.read_f32(*t);
  if (v.size() != n)
    throw Error(path.string() + ": tensor '" + name + "' has " + std::to_string(v.size()) + " elements, the model needs " +
                std::to_string(n));
  return v;
}

}  // namespace

std::string file_checksum(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path.string() + ": cannot open");
  uint64_t h = 0xcbf29ce484222325ull;
  std::vector<char> buf(size_t(1) << 20);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    for (std::streamsize i = 0; i < f.gcount(); ++i) h = (h ^ uint8_t(buf[size_t(i)])) * 0x100000001b3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
  return hex;
}

void save_checkpoint(const fs::path& dir, const model::ParamLayout& layout, std::span<const float> params,
                     std::span<const float> m, std::span<const float> v, const TrainerState& state,
                     const tok::Tokenizer& tokenizer) {
  const fs::path tmp = with_suffix(dir, ".tmp"), old = with_suffix(dir, ".old");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  io::save_model(tmp, layout, params, DType::f32);
  const Shape shape{int64_t(m.size())};
  io::write_safetensors(tmp / kOptimizerFile, {{"m", DType::f32, shape, as_bytes(m)}, {"v", DType::f32, shape, as_bytes(v)}});
  tokenizer.save(tmp);

  nlohmann::json files = nlohmann::json::object();
  for (const char* name : kChecked)
    files[name] = {{"bytes", fs::file_size(tmp / name)}, {"fnv1a64", file_checksum(tmp / name)}};
  const nlohmann::json j = {{"step", state.step},       {"total_steps", state.total_steps},
                            {"cursor", cursor_json(state.cursor)},
                            {"tokens", state.tokens},   {"elapsed_s", state.elapsed_s},
                            {"options", state.options}, {"files", files},
                            {"loss_scale", {{"scale", state.loss_scale.scale},
                                            {"clean_steps", state.loss_scale.clean_steps},
                                            {"skipped_steps", state.loss_scale.skipped_steps}}}};
  write_text(tmp / kStateFile, j.dump(2) + "\n");

  // Replace: the old checkpoint stays whole until the new one is in place.
  fs::remove_all(old);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old);
}

fs::path find_checkpoint(const fs::path& dir) {
  if (fs::exists(dir / kStateFile)) return dir;
  const fs::path old = with_suffix(dir, ".old");
  if (fs::exists(old / kStateFile)) return old;
  return {};
}

Checkpoint load_checkpoint(const fs::path& requested) {
  const fs::path dir = find_checkpoint(requested);
  if (dir.empty()) throw Error(requested.string() + ": no checkpoint here (" + kStateFile + " is missing)");
  const fs::path state_path = dir / kStateFile;
  nlohmann::json j;
  try {
    std::ifstream f(state_path);
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path.string() + ": not valid JSON (" + e.what() + ")");
  }
  Checkpoint c;
  try {
    for (const char* name : kChecked) {
      const fs::path p = dir / name;
      const auto& want = j.at("files").at(name);
      if (!fs::exists(p)) throw Error(p.string() + ": missing from the checkpoint");
      if (fs::file_size(p) != want.at("bytes").get<uint64_t>())
        throw Error(p.string() + ": " + std::to_string(fs::file_size(p)) + " bytes, the checkpoint recorded " +
                    std::to_string(want.at("bytes").get<uint64_t>()) + " (truncated or replaced)");
      if (file_checksum(p) != want.at("fnv1a64").get<std::string>())
        throw Error(p.string() + ": checksum mismatch (the file is corrupt)");
    }
    c.state.step = j.at("step").get<int64_t>();
    c.state.total_steps = j.at("total_steps").get<int64_t>();
    const auto& cur = j.at("cursor");
    c.state.cursor = {cur.at("epoch").get<uint64_t>(), cur.at("position").get<uint64_t>(), cur.at("offset").get<uint64_t>()};
    c.state.tokens = j.at("tokens").get<uint64_t>();
    c.state.elapsed_s = j.at("elapsed_s").get<double>();
    c.state.options = j.at("options");
    if (j.contains("loss_scale")) {  // written since mixed precision came
      const auto& ls = j.at("loss_scale");
      c.state.loss_scale = {ls.at("scale").get<float>(), ls.at("clean_steps").get<float>(),
                            ls.at("skipped_steps").get<float>()};
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(state_path.string() + ": missing or ill-typed field (" + e.what() + ")");
  }
  io::ModelFiles model = io::load_model(dir);
  c.config = model.config;
  c.params = std::move(model.params);
  const fs::path opt_path = dir / kOptimizerFile;
  const io::SafetensorsFile opt = io::SafetensorsFile::open(opt_path);
  c.m = flat_tensor(opt, opt_path, "m", c.params.size());
  c.v = flat_tensor(opt, opt_path, "v", c.params.size());
  return c;
}

}  // namespace vkm::train
