// Model folders: save then load gives the same config and weights (f32 bit for bit, f16/bf16 as rounded once),
// sharded checkpoints, MiniMind's tied lm_head, and a clear error for every folder that is not a model vkmind
// can run.
#include "model/io/model_files.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/io/safetensors.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::io {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

model::ModelConfig tiny(bool tied) {
  model::ModelConfig c = model::preset("tiny");
  c.tie_embeddings = tied;
  c.rope_theta = 5e5;
  c.eps = 1e-6;
  return c;
}

std::span<const uint8_t> as_bytes(std::span<const float> v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size_bytes()};
}

// The tensors of a model as safetensors records pointing into `flat`, in layout order.
std::vector<TensorRecord> records(const model::ParamLayout& layout, std::span<const float> flat) {
  std::vector<TensorRecord> r;
  for (const auto& e : layout.entries())
    r.push_back({e.name, DType::f32, e.shape, as_bytes(flat.subspan(size_t(e.offset), size_t(e.numel())))});
  return r;
}

void write_config(const fs::path& dir, const model::ModelConfig& c) {
  std::ofstream(dir / "config.json") << model::config_to_json(c);
}

void expect_same_config(const model::ModelConfig& a, const model::ModelConfig& b) {
  EXPECT_EQ(model::config_to_json(a), model::config_to_json(b));
}

class ModelFilesRoundTrip : public testing::TestWithParam<bool> {};

TEST_P(ModelFilesRoundTrip, F32IsExact) {
  TempDir d;
  const model::ParamLayout layout(tiny(GetParam()));
  const auto params = model::init_params(layout, 7);
  save_model(d.path / "m", layout, params);
  const ModelFiles m = load_model(d.path / "m");
  expect_same_config(m.config, layout.config());
  ASSERT_EQ(m.params.size(), params.size());
  EXPECT_EQ(std::memcmp(m.params.data(), params.data(), params.size() * 4), 0);

  const SafetensorsFile f = SafetensorsFile::open(d.path / "m" / "model.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");  // transformers refuses a file without it
  EXPECT_EQ(f.tensors().size(), layout.entries().size());
  EXPECT_EQ(f.find("lm_head.weight") != nullptr, !GetParam());
  EXPECT_NE(f.find("model.layers.1.mlp.up_proj.weight"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Tied, ModelFilesRoundTrip, testing::Bool());

TEST(ModelFiles, HalfPrecisionRoundsOnce) {
  const model::ParamLayout layout(tiny(true));
  const auto params = model::init_params(layout, 3);
  for (DType t : {DType::f16, DType::bf16}) {
    TempDir d;
    save_model(d.path, layout, params, t);
    const ModelFiles m = load_model(d.path);
    for (size_t i = 0; i < params.size(); ++i) {
      const float want = t == DType::f16 ? f16_to_f32(f32_to_f16(params[i])) : bf16_to_f32(f32_to_bf16(params[i]));
      ASSERT_EQ(m.params[i], want) << i;
    }
    std::ifstream in(d.path / "config.json");
    EXPECT_EQ(nlohmann::json::parse(in)["torch_dtype"], t == DType::f16 ? "float16" : "bfloat16");
    EXPECT_EQ(SafetensorsFile::open(d.path / "model.safetensors").tensors()[0].dtype, t);
  }
}

TEST(ModelFiles, ShardedCheckpoint) {
  TempDir d;
  const model::ParamLayout layout(tiny(false));
  const auto params = model::init_params(layout, 11);
  write_config(d.path, layout.config());
  auto all = records(layout, params);
  const std::vector<TensorRecord> first(all.begin(), all.begin() + 5), second(all.begin() + 5, all.end());
  write_safetensors(d.path / "model-00001-of-00002.safetensors", first, {{"format", "pt"}});
  write_safetensors(d.path / "model-00002-of-00002.safetensors", second, {{"format", "pt"}});
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t i = 0; i < all.size(); ++i)
    index["weight_map"][all[i].name] = i < 5 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  std::ofstream(d.path / "model.safetensors.index.json") << index.dump();
  EXPECT_EQ(load_model(d.path).params, params);

  // The index must agree with the shards.
  index["weight_map"][all[0].name] = "model-00002-of-00002.safetensors";
  std::ofstream(d.path / "model.safetensors.index.json") << index.dump();
  test::expect_error("model-00001-of-00002.safetensors: not listed for this shard in model.safetensors.index.json, "
                     "tensor model.embed_tokens.weight", [&] { load_model(d.path); });
  index["weight_map"][all[0].name] = "../model-00001-of-00002.safetensors";
  std::ofstream(d.path / "model.safetensors.index.json") << index.dump();
  test::expect_error("is not a file in the model folder, tensor model.embed_tokens.weight", [&] { load_model(d.path); });
  std::ofstream(d.path / "model.safetensors.index.json") << "{\"weight_map\": 3}";
  test::expect_error("model.safetensors.index.json: no 'weight_map' object", [&] { load_model(d.path); });
}

// A tied model's config.json in a fresh folder, and its tensors to write in varied ways.
class TiedFolder : public testing::Test {
 protected:
  void SetUp() override { write_config(d.path, layout.config()); }
  void write(const std::vector<TensorRecord>& recs) const { write_safetensors(d.path / "model.safetensors", recs); }

  TempDir d;
  const model::ParamLayout layout{tiny(true)};
  const std::vector<float> params = model::init_params(layout, 5);
  const std::vector<TensorRecord> good = records(layout, params);
};

// MiniMind's checkpoints hold lm_head.weight beside the embedding it is tied to; older transformers
// checkpoints hold rotary inv_freq buffers.
TEST_F(TiedFolder, TiedHeadAndRotaryBuffers) {
  auto recs = good;
  const std::vector<float> inv_freq(8, 0.5f);
  recs.push_back({"lm_head.weight", DType::f32, recs[0].shape, recs[0].bytes});
  recs.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::f32, {8}, as_bytes(inv_freq)});
  write(recs);
  EXPECT_EQ(load_model(d.path).params, params);

  std::vector<float> other(params.begin() + layout.entries()[0].offset,
                           params.begin() + layout.entries()[0].offset + layout.entries()[0].numel());
  other[17] += 1.0f;
  recs[recs.size() - 2].bytes = as_bytes(other);
  write(recs);
  test::expect_error("lm_head.weight differs from model.embed_tokens.weight", [&] { load_model(d.path); });
}

TEST_F(TiedFolder, RefusesWhatIsNotThisModel) {
  auto recs = good;
  recs.push_back({"model.layers.0.self_attn.q_proj.bias", DType::f32, {1}, recs[1].bytes.first(4)});
  write(recs);
  test::expect_error("model.safetensors: unknown tensor (not part of a LLaMA model with this config.json), tensor "
                     "model.layers.0.self_attn.q_proj.bias", [&] { load_model(d.path); });

  recs = good;
  recs.erase(recs.begin() + 3);
  write(recs);
  test::expect_error("model.safetensors: missing tensor " + good[3].name, [&] { load_model(d.path); });

  recs = good;
  recs[3].shape = {recs[3].shape[1], recs[3].shape[0]};
  write(recs);
  test::expect_error("the config needs [32,64], tensor " + good[3].name, [&] { load_model(d.path); });

  recs = good;
  recs[1].dtype = DType::i32;
  write(recs);
  test::expect_error("I32 is not a float dtype (F32, F16, BF16), tensor " + good[1].name, [&] { load_model(d.path); });

  write(good);
  std::ofstream(d.path / "config.json") << R"({"model_type": "mistral", "hidden_size": 64})";
  test::expect_error("config.json: field 'model_type'", [&] { load_model(d.path); });
  model::ModelConfig huge = layout.config();
  huge.layers = 1000000;  // refused before a layout of a million layers is built
  write_config(d.path, huge);
  test::expect_error("model.safetensors: the config's 1000000 layers need more than the 20 tensors the weights hold",
                     [&] { load_model(d.path); });
  fs::remove(d.path / "config.json");
  test::expect_error("config.json: missing", [&] { load_model(d.path); });
  write_config(d.path, layout.config());
  fs::remove(d.path / "model.safetensors");
  test::expect_error("no model.safetensors or model.safetensors.index.json", [&] { load_model(d.path); });
  test::expect_error("nowhere: no such model folder", [&] { load_model(d.path / "nowhere"); });
  test::expect_error("config.json: not a model folder", [&] { load_model(d.path / "config.json"); });
  test::expect_error("the parameter buffer has 3 values", [&] { save_model(d.path, layout, std::vector<float>(3)); });
  test::expect_error("not i32", [&] { save_model(d.path, layout, params, DType::i32); });
}

}  // namespace
}  // namespace vkm::io
