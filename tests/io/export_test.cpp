// `vkmind export` as model/io/export.hpp does it: the Hugging Face folder with every file and field transformers
// reads, GGUF output, input from either, and errors that name the flag or file.
#include "model/io/export.hpp"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/io/gguf_model.hpp"
#include "model/io/model_files.hpp"
#include "model/io/safetensors.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::io {
namespace {

using test::TempDir;
namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

tok::Tokenizer tiny_tokenizer() { return tok::Tokenizer::load(test::data_dir() / "tokenizer" / "tiny" / "tokenizer.json"); }

// A model folder as training leaves it: config.json, model.safetensors and the tokenizer.
model::ParamLayout write_model(const fs::path& dir, bool tied) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = 730;
  c.tie_embeddings = tied;
  const model::ParamLayout layout(c);
  save_model(dir, layout, model::init_params(layout, 8));
  tiny_tokenizer().save(dir);
  return layout;
}

TEST(Export, HuggingFaceFolderHasWhatTransformersReads) {
  TempDir d;
  const model::ParamLayout layout = write_model(d.path / "model", false);
  const ExportSummary s = export_model({.model = d.path / "model", .out = d.path / "hf", .format = "hf", .dtype = "bf16"});
  EXPECT_EQ(s.dtype, "bf16");
  EXPECT_EQ(s.parameters, layout.parameter_count());
  EXPECT_EQ(s.tokens, 722);

  const json config = read_json(d.path / "hf" / "config.json");
  EXPECT_EQ(config["architectures"], json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(config["model_type"], "llama");
  const model::ModelConfig& c = layout.config();
  const std::pair<const char*, json> fields[] = {
      {"hidden_size", c.hidden}, {"intermediate_size", c.ffn}, {"num_hidden_layers", c.layers},
      {"num_attention_heads", c.heads}, {"num_key_value_heads", c.kv_heads}, {"vocab_size", c.vocab},
      {"max_position_embeddings", c.max_positions}, {"rope_theta", c.rope_theta}, {"rms_norm_eps", c.eps},
      {"tie_word_embeddings", false}, {"torch_dtype", "bfloat16"}, {"bos_token_id", 1}, {"eos_token_id", 2},
      {"pad_token_id", 0}, {"rope_scaling", nullptr}, {"hidden_act", "silu"}};
  for (const auto& [key, value] : fields) EXPECT_EQ(config[key], value) << key;

  const json generation = read_json(d.path / "hf" / "generation_config.json");
  EXPECT_EQ(generation["eos_token_id"], 2);
  EXPECT_EQ(generation["bos_token_id"], 1);
  const json tokenizer_config = read_json(d.path / "hf" / "tokenizer_config.json");
  EXPECT_EQ(tokenizer_config["chat_template"], tok::kChatTemplate);
  EXPECT_EQ(tokenizer_config["eos_token"], "<|im_end|>");
  const std::string text = "Hello <|im_start|>there";
  EXPECT_EQ(tok::Tokenizer::load(d.path / "hf").encode(text), tiny_tokenizer().encode(text));

  const SafetensorsFile weights = SafetensorsFile::open(d.path / "hf" / "model.safetensors");
  EXPECT_EQ(weights.metadata().at("format"), "pt");
  EXPECT_EQ(weights.find("lm_head.weight")->dtype, DType::bf16);
  EXPECT_EQ(load_model(d.path / "hf").config.vocab, 730);  // and it reads back
}

TEST(Export, GgufFromAFolderAndHuggingFaceFromAGguf) {
  TempDir d;
  write_model(d.path / "model", true);
  const auto original = load_model(d.path / "model").params;
  export_model({.model = d.path / "model", .out = d.path / "m.gguf", .format = "gguf", .dtype = "f32"});
  const GgufFile f = GgufFile::open(d.path / "m.gguf");
  EXPECT_EQ(f.get_string("general.name"), "model");
  EXPECT_EQ(f.find_tensor("token_embd.weight")->type, GgmlType::f32);
  export_model({.model = d.path / "m.gguf", .out = d.path / "hf", .format = "hf"});  // the GGUF's own tokenizer
  EXPECT_EQ(load_model(d.path / "hf").params, original);
  EXPECT_EQ(tok::Tokenizer::load(d.path / "hf").model().merges, tiny_tokenizer().model().merges);
  export_model({.model = d.path / "hf", .out = d.path / "default.gguf", .format = "gguf", .name = "mine"});
  EXPECT_EQ(GgufFile::open(d.path / "default.gguf").find_tensor("blk.0.attn_q.weight")->type, GgmlType::f16);
  EXPECT_EQ(GgufFile::open(d.path / "default.gguf").get_string("general.name"), "mine");
}

TEST(Export, ErrorsNameTheFlagOrFile) {
  TempDir d;
  write_model(d.path / "model", true);
  test::expect_error("--dtype q8_0 is for --format gguf",
                     [&] { export_model({.model = d.path / "model", .out = d.path / "x", .format = "hf", .dtype = "q8_0"}); });
  test::expect_error("--dtype must be f32, f16, bf16 or q8_0, not 'f8'",
                     [&] { export_model({.model = d.path / "model", .out = d.path / "x", .format = "gguf", .dtype = "f8"}); });
  test::expect_error("--format must be hf or gguf, not 'onnx'",
                     [&] { export_model({.model = d.path / "model", .out = d.path / "x", .format = "onnx"}); });
  test::expect_error("nothing: no such model folder",
                     [&] { export_model({.model = d.path / "nothing", .out = d.path / "x", .format = "hf"}); });
  test::expect_error("the run's model is " + (d.path / "model").string(),
                     [&] { export_model({.model = d.path, .out = d.path / "x", .format = "hf"}); });
  fs::remove(d.path / "model" / "tokenizer.json");
  test::expect_error("no tokenizer.json beside the model; name one with --tokenizer",
                     [&] { export_model({.model = d.path / "model", .out = d.path / "x", .format = "hf"}); });
  test::expect_error("tokenizer has 722 tokens but the model's vocab_size is 300", [&] {
    const model::ParamLayout small(model::preset("tiny"));
    export_hf(d.path / "x", small, model::init_params(small, 1), tiny_tokenizer());
  });
}

}  // namespace
}  // namespace vkm::io
