#include "model/config.hpp"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"

namespace vkm::model {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

void ModelConfig::validate() const {
  auto fail = [](const std::string& why) { throw Error("model config: " + why); };
  auto positive = [&](int64_t v, const char* name) {
    if (v <= 0) fail(std::string(name) + " must be positive (is " + std::to_string(v) + ")");
  };
  positive(hidden, "hidden_size");
  positive(layers, "num_hidden_layers");
  positive(heads, "num_attention_heads");
  positive(kv_heads, "num_key_value_heads");
  positive(ffn, "intermediate_size");
  positive(vocab, "vocab_size");
  positive(max_positions, "max_position_embeddings");
  if (hidden % heads != 0) fail("hidden_size " + std::to_string(hidden) + " is not a multiple of num_attention_heads");
  if (head_dim != hidden / heads)
    fail("head_dim " + std::to_string(head_dim) + " must be hidden_size / num_attention_heads = " +
         std::to_string(hidden / heads));
  if (head_dim % 4 != 0 || head_dim > 256) fail("head_dim must be a multiple of 4 and at most 256 (is " +
                                                std::to_string(head_dim) + ")");
  if (heads % kv_heads != 0) fail("num_attention_heads must be a multiple of num_key_value_heads");
  if (vocab > INT32_MAX) fail("vocab_size must fit an i32 token id");
  if (!(rope_theta > 0)) fail("rope_theta must be positive");
  if (!(eps > 0)) fail("rms_norm_eps must be positive");
  if (!(initializer_range >= 0)) fail("initializer_range must not be negative");
}

int64_t ModelConfig::parameter_count() const {
  const int64_t C = hidden, kv = kv_heads * head_dim, F = ffn;
  const int64_t layer = C * C + 2 * C * kv + C * C + 3 * F * C + 2 * C;
  return vocab * C + layers * layer + C + (tie_embeddings ? 0 : vocab * C);
}

namespace {

ModelConfig make(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads, int64_t ffn, int64_t vocab,
                 int64_t max_positions) {
  ModelConfig c;
  c.hidden = hidden, c.layers = layers, c.heads = heads, c.kv_heads = kv_heads, c.head_dim = hidden / heads;
  c.ffn = ffn, c.vocab = vocab, c.max_positions = max_positions;
  return c;
}

}  // namespace

std::vector<std::string> preset_names() { return {"minimind2-small", "minimind2", "tiny"}; }

ModelConfig preset(std::string_view name) {
  if (name == "minimind2-small") return make(512, 8, 8, 2, 1408, 6400, 32768);
  if (name == "minimind2") return make(768, 16, 8, 2, 2048, 6400, 32768);
  if (name == "tiny") return make(64, 2, 4, 2, 96, 300, 256);
  std::string known;
  for (const auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown model preset '" + std::string(name) + "' (known: " + known + ")");
}

std::string config_to_json(const ModelConfig& c) {
  c.validate();
  ojson j;
  j["architectures"] = ojson::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["hidden_size"] = c.hidden;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["num_key_value_heads"] = c.kv_heads;
  j["head_dim"] = c.head_dim;
  j["intermediate_size"] = c.ffn;
  j["vocab_size"] = c.vocab;
  j["max_position_embeddings"] = c.max_positions;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  j["rms_norm_eps"] = c.eps;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["initializer_range"] = c.initializer_range;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["mlp_bias"] = false;
  j["bos_token_id"] = 1;
  j["eos_token_id"] = 2;
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

ModelConfig config_from_json(std::string_view text, const std::string& source) {
  auto fail = [&](const std::string& why) { throw Error(source + ": " + why); };
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("not a JSON object");
  auto integer = [&](const char* field) -> int64_t {
    if (!j.contains(field)) fail("field '" + std::string(field) + "' is missing");
    const json& v = j[field];
    if (!v.is_number_integer()) fail("field '" + std::string(field) + "' must be an integer (is " + v.dump() + ")");
    return v.get<int64_t>();
  };
  auto number = [&](const char* field, double fallback) -> double {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_number()) fail("field '" + std::string(field) + "' must be a number (is " + j[field].dump() + ")");
    return j[field].get<double>();
  };
  auto boolean = [&](const char* field, bool fallback) -> bool {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_boolean()) fail("field '" + std::string(field) + "' must be true or false (is " + j[field].dump() + ")");
    return j[field].get<bool>();
  };
  if (j.contains("model_type")) {
    const json& t = j["model_type"];
    if (!t.is_string() || (t != "llama" && t != "minimind"))
      fail("field 'model_type' must be \"llama\" (or \"minimind\"), is " + t.dump());
  }
  if (j.contains("architectures")) {
    const json& a = j["architectures"];
    bool ok = a.is_array();
    if (ok)
      for (const json& e : a) ok = ok && e.is_string() && (e == "LlamaForCausalLM" || e == "MiniMindForCausalLM");
    if (!ok) fail("field 'architectures' must be [\"LlamaForCausalLM\"], is " + a.dump());
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    fail("field 'hidden_act' must be \"silu\", is " + j["hidden_act"].dump());
  for (const char* f : {"attention_bias", "mlp_bias"})
    if (boolean(f, false)) fail("field '" + std::string(f) + "': biases are not supported");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    fail("field 'rope_scaling': rope scaling (YaRN) is not supported by the model yet");
  if (boolean("use_moe", false)) fail("field 'use_moe': mixture-of-experts models are not supported yet");

  ModelConfig c;
  c.hidden = integer("hidden_size");
  c.layers = integer("num_hidden_layers");
  c.heads = integer("num_attention_heads");
  c.kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? integer("num_key_value_heads")
                                                                                          : c.heads;
  c.ffn = integer("intermediate_size");
  c.vocab = integer("vocab_size");
  c.max_positions = integer("max_position_embeddings");
  c.rope_theta = number("rope_theta", 1e4);  // transformers' LlamaConfig default
  c.eps = number("rms_norm_eps", 1e-6);      // likewise
  c.tie_embeddings = boolean("tie_word_embeddings", false);  // likewise (MiniMind's configs say true)
  c.initializer_range = number("initializer_range", 0.02);
  if (c.heads <= 0) fail("field 'num_attention_heads' must be positive");
  c.head_dim = c.hidden / c.heads;
  if (j.contains("head_dim") && !j["head_dim"].is_null() && integer("head_dim") != c.head_dim)
    fail("field 'head_dim' must be hidden_size / num_attention_heads = " + std::to_string(c.head_dim) +
         " (is " + j["head_dim"].dump() + ")");
  try {
    c.validate();
  } catch (const Error& e) {
    fail(e.what());
  }
  return c;
}

ModelConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the model config");
  std::stringstream s;
  s << in.rdbuf();
  return config_from_json(s.str(), path);
}

void save_config(const ModelConfig& c, const std::string& path) {
  const std::string text = config_to_json(c);
  std::ofstream out(path, std::ios::binary);
  if (!out || !out.write(text.data(), std::streamsize(text.size())) || !out.flush())
    throw Error(path + ": cannot write the model config");
}

}  // namespace vkm::model
