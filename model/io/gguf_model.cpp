#include "model/io/gguf_model.hpp"

#include <charconv>
#include <cstring>
#include <fstream>
#include <map>
#include <unistd.h>

#include "engine/error.hpp"
#include "model/io/float_codec.hpp"

namespace vkm::io {

namespace fs = std::filesystem;

namespace {

// Qwen2's Split regex (llama.cpp's pre-tokenizer "qwen2"); an empty split pattern is GPT-2's ("gpt-2").
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// llama.cpp's token types.
enum TokenType : int32_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5 };

// llama_ftype of a file whose matrices are `type`.
uint32_t file_type(GgmlType type) {
  switch (type) {
    case GgmlType::f32: return 0;
    case GgmlType::f16: return 1;
    case GgmlType::q8_0: return 7;
    case GgmlType::bf16: return 32;
  }
  return 0;
}

// The llama.cpp name of a Hugging Face LLaMA tensor name.
std::string gguf_name(const std::string& hf) {
  static const std::pair<std::string_view, std::string_view> layer_names[] = {
      {"input_layernorm.weight", "attn_norm.weight"},       {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},         {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},    {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},          {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  constexpr std::string_view prefix = "model.layers.";
  const size_t dot = hf.find('.', prefix.size());
  const std::string_view rest = std::string_view(hf).substr(dot + 1);
  for (auto [from, to] : layer_names)
    if (rest == from) return "blk." + hf.substr(prefix.size(), dot - prefix.size()) + "." + std::string(to);
  throw Error("no GGUF name for tensor " + hf);
}

// Rows of a q or k projection [heads * head_dim, cols] reordered within each head: half-split pairs
// (i, i + head_dim/2) become adjacent pairs (2i, 2i+1) (`to_gguf`), or back.
std::vector<float> permute_rope_rows(std::span<const float> in, int64_t heads, int64_t head_dim, int64_t cols,
                                     bool to_gguf) {
  std::vector<float> out(in.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t split = h * head_dim + j * half + i, adjacent = h * head_dim + 2 * i + j;
        const int64_t from = to_gguf ? split : adjacent, to = to_gguf ? adjacent : split;
        std::memcpy(&out[size_t(to * cols)], &in[size_t(from * cols)], size_t(cols) * sizeof(float));
      }
  return out;
}

// The number of heads whose rows are permuted in entry `index`, or 0 when it is not a q or k projection.
int64_t rope_heads(const model::ParamLayout& layout, size_t index) {
  for (int64_t l = 0; l < layout.config().layers; ++l) {
    if (layout.layer(l).q == index) return layout.config().heads;
    if (layout.layer(l).k == index) return layout.config().kv_heads;
  }
  return 0;
}

// A float32 metadata value as the decimal it was written from (1e-5 stays 1e-5, not 9.99999974738e-06).
double shortest_decimal(double f32_value) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf, float(f32_value)).ptr;
  double d = f32_value;
  std::from_chars(buf, end, d);
  return d;
}

GgufMetadata tokenizer_metadata(const tok::Tokenizer& tokenizer, int64_t vocab) {
  const tok::BpeModel& m = tokenizer.model();
  auto refuse = [](const std::string& what) {
    throw Error("the tokenizer " + what + ", which GGUF's gpt2 tokenizer cannot express");
  };
  // Qwen2's NFC normalizer is part of what llama.cpp's "qwen2" pre-tokenizer stands for; others are not.
  const bool qwen2 = m.split_pattern == kQwen2Pattern;
  if (m.nfkc || (m.nfc && !qwen2)) refuse("normalizes text (NFKC/NFC)");
  if (m.add_prefix_space) refuse("adds a prefix space");
  if (m.ignore_merges) refuse("ignores merges for whole-word tokens");
  if (!m.split_pattern.empty() && !qwen2) refuse("splits with its own regex");
  if (int64_t(m.vocab.size()) > vocab)
    throw Error("the tokenizer has " + std::to_string(m.vocab.size()) + " tokens but the model's vocab_size is " +
                std::to_string(vocab));

  std::vector<std::string> tokens = m.vocab;
  std::vector<int32_t> types(tokens.size(), kNormal);
  for (const std::string& s : m.special) types[size_t(tokenizer.token_id(s))] = kControl;
  for (const std::string& s : m.added) types[size_t(tokenizer.token_id(s))] = kUserDefined;
  for (int64_t i = int64_t(tokens.size()); i < vocab; ++i) {  // embedding rows no token uses
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(kUnused);
  }
  std::vector<std::string> merges;
  for (const auto& [a, b] : m.merges) merges.push_back(a + " " + b);

  GgufMetadata md = {{"tokenizer.ggml.model", GgufValue::string("gpt2")},
                     {"tokenizer.ggml.pre", GgufValue::string(qwen2 ? "qwen2" : "gpt-2")},
                     {"tokenizer.ggml.tokens", GgufValue::strings(std::move(tokens))},
                     {"tokenizer.ggml.token_type", GgufValue::i32s(types)},
                     {"tokenizer.ggml.merges", GgufValue::strings(std::move(merges))}};
  // MiniMind's roles, as Tokenizer::save writes them into tokenizer_config.json.
  const std::pair<const char*, std::string_view> roles[] = {{"tokenizer.ggml.bos_token_id", tok::kImStart},
                                                            {"tokenizer.ggml.eos_token_id", tok::kImEnd},
                                                            {"tokenizer.ggml.padding_token_id", tok::kEndOfText}};
  for (auto [key, token] : roles)
    if (tokenizer.token_id(token) >= 0) md.emplace_back(key, GgufValue::u32(uint32_t(tokenizer.token_id(token))));
  md.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::boolean(false));
  md.emplace_back("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  md.emplace_back("tokenizer.chat_template", GgufValue::string(std::string(tok::kChatTemplate)));
  return md;
}

}  // namespace

void save_gguf(const fs::path& path, const model::ParamLayout& layout, std::span<const float> flat,
               const tok::Tokenizer& tokenizer, GgmlType type, std::string_view name) {
  const model::ModelConfig& c = layout.config();
  if (flat.size() != size_t(layout.total_elems()))
    throw Error("save_gguf: the parameter buffer has " + std::to_string(flat.size()) + " values, the layout " +
                std::to_string(layout.total_elems()));
  auto u32 = [](int64_t v) { return GgufValue::u32(uint32_t(v)); };
  GgufMetadata md = {{"general.architecture", GgufValue::string("llama")},
                     {"general.name", GgufValue::string(std::string(name))},
                     {"general.file_type", GgufValue::u32(file_type(type))},
                     {"general.quantization_version", GgufValue::u32(2)},
                     {"llama.vocab_size", u32(c.vocab)},
                     {"llama.context_length", u32(c.max_positions)},
                     {"llama.embedding_length", u32(c.hidden)},
                     {"llama.block_count", u32(c.layers)},
                     {"llama.feed_forward_length", u32(c.ffn)},
                     {"llama.rope.dimension_count", u32(c.head_dim)},
                     {"llama.attention.head_count", u32(c.heads)},
                     {"llama.attention.head_count_kv", u32(c.kv_heads)},
                     {"llama.attention.layer_norm_rms_epsilon", GgufValue::f32(float(c.eps))},
                     {"llama.rope.freq_base", GgufValue::f32(float(c.rope_theta))}};
  for (auto& kv : tokenizer_metadata(tokenizer, c.vocab)) md.push_back(std::move(kv));

  std::vector<std::vector<uint8_t>> data;  // every tensor's bytes, alive until written
  std::vector<GgufTensor> tensors;
  for (size_t i = 0; i < layout.entries().size(); ++i) {
    const model::ParamEntry& e = layout.entries()[i];
    std::span<const float> values = flat.subspan(size_t(e.offset), size_t(e.numel()));
    std::vector<float> permuted;
    if (const int64_t heads = rope_heads(layout, i)) {
      permuted = permute_rope_rows(values, heads, c.head_dim, e.shape[1], true);
      values = permuted;
    }
    GgmlType t = e.shape.size() == 1 ? GgmlType::f32 : type;
    if (t == GgmlType::q8_0 && e.shape.back() % kQ8Block != 0) t = GgmlType::f16;
    switch (t) {
      case GgmlType::q8_0: data.push_back(quantize_q8_0(values)); break;
      case GgmlType::f32: data.push_back(encode_floats(DType::f32, values)); break;
      case GgmlType::f16: data.push_back(encode_floats(DType::f16, values)); break;
      case GgmlType::bf16: data.push_back(encode_floats(DType::bf16, values)); break;
    }
    tensors.push_back({gguf_name(e.name), t, e.shape, data.back()});
  }
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  try {
    write_gguf(tmp, md, tensors);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
}

bool is_gguf(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return fs::is_regular_file(path) && in.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}

ModelFiles load_gguf(const fs::path& path) {
  const GgufFile f = GgufFile::open(path);
  const std::string where = path.string() + ": ";
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama") throw Error(where + "metadata general.architecture is \"" + arch + "\"; vkmind runs \"llama\"");
  auto count = [&](const char* key) { return int64_t(f.get_uint(key)); };
  auto optional_count = [&](const char* key, int64_t fallback) { return f.find(key) ? count(key) : fallback; };
  const GgufTensor* embed = f.find_tensor("token_embd.weight");
  if (!embed || embed->shape.size() != 2) throw Error(where + "missing tensor token_embd.weight");

  model::ModelConfig c;
  c.hidden = count("llama.embedding_length");
  c.layers = count("llama.block_count");
  c.heads = count("llama.attention.head_count");
  c.kv_heads = optional_count("llama.attention.head_count_kv", c.heads);
  c.ffn = count("llama.feed_forward_length");
  c.max_positions = count("llama.context_length");
  c.vocab = embed->shape[0];
  c.head_dim = c.heads > 0 ? c.hidden / c.heads : 0;
  c.rope_theta = f.find("llama.rope.freq_base") ? shortest_decimal(f.get_float("llama.rope.freq_base")) : 1e4;
  c.eps = shortest_decimal(f.get_float("llama.attention.layer_norm_rms_epsilon"));
  c.tie_embeddings = f.find_tensor("output.weight") == nullptr;
  auto refuse = [&](const char* key, const std::string& why) { throw Error(where + "metadata " + key + " " + why); };
  for (const char* key : {"llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length"})
    if (f.find(key) && count(key) != c.head_dim)
      refuse(key, "is " + std::to_string(count(key)) + "; vkmind needs embedding_length / head_count = " +
                      std::to_string(c.head_dim));
  if (optional_count("llama.vocab_size", c.vocab) != c.vocab)
    refuse("llama.vocab_size", "differs from the rows of token_embd.weight");
  if (f.find("llama.rope.scaling.type") && f.get_string("llama.rope.scaling.type") != "none")
    refuse("llama.rope.scaling.type", "asks for rope scaling, which vkmind does not support yet");
  if (optional_count("llama.expert_count", 0) > 0) refuse("llama.expert_count", ": mixture-of-experts models are not supported");
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(where + e.what());
  }

  if (c.layers > int64_t(f.tensors().size()))  // refused before a layout for it is built
    refuse("llama.block_count", "is " + std::to_string(c.layers) + " but the file holds only " +
                                    std::to_string(f.tensors().size()) + " tensors");
  const model::ParamLayout layout(c);
  std::map<std::string, size_t> wanted;  // GGUF name -> layout entry
  for (size_t i = 0; i < layout.entries().size(); ++i) wanted[gguf_name(layout.entries()[i].name)] = i;
  for (const GgufTensor& t : f.tensors())
    if (!wanted.count(t.name)) throw Error(where + "unknown tensor (not part of a llama model vkmind runs), tensor " + t.name);
  for (const auto& [name, index] : wanted) {
    const GgufTensor* t = f.find_tensor(name);
    if (!t) throw Error(where + "missing tensor " + name);
    if (t->shape != layout.entries()[index].shape)
      throw Error(where + "shape " + shape_string(t->shape) + ", the metadata needs " +
                  shape_string(layout.entries()[index].shape) + ", tensor " + name);
  }

  ModelFiles m{c, std::vector<float>(size_t(layout.total_elems()), 0.0f)};
  for (const auto& [name, index] : wanted) {
    const model::ParamEntry& e = layout.entries()[index];
    std::vector<float> values = f.read_f32(*f.find_tensor(name));
    if (const int64_t heads = rope_heads(layout, index))
      values = permute_rope_rows(values, heads, c.head_dim, e.shape[1], false);
    std::copy(values.begin(), values.end(), m.params.begin() + e.offset);
  }
  return m;
}

tok::Tokenizer load_gguf_tokenizer(const fs::path& path) {
  const GgufFile f = GgufFile::open(path);
  const std::string where = path.string() + ": metadata ";
  if (f.get_string("tokenizer.ggml.model") != "gpt2")
    throw Error(where + "tokenizer.ggml.model is \"" + f.get_string("tokenizer.ggml.model") +
                "\"; vkmind reads byte-level BPE (\"gpt2\")");
  tok::BpeModel m;
  if (f.find("tokenizer.ggml.pre")) {
    const std::string& pre = f.get_string("tokenizer.ggml.pre");
    if (pre == "qwen2") {
      m.split_pattern = kQwen2Pattern;
      m.nfc = true;
    } else if (pre != "gpt-2" && pre != "default")
      throw Error(where + "tokenizer.ggml.pre \"" + pre + "\" is not a pre-tokenizer vkmind implements (gpt-2, qwen2)");
  }
  m.vocab = f.get_strings("tokenizer.ggml.tokens");
  const std::vector<int64_t> types = f.get_ints("tokenizer.ggml.token_type");
  if (types.size() != m.vocab.size()) throw Error(where + "tokenizer.ggml.token_type does not have one type per token");
  while (!m.vocab.empty() && types[m.vocab.size() - 1] == kUnused) m.vocab.pop_back();  // padding rows
  for (size_t i = 0; i < m.vocab.size(); ++i) {
    if (types[i] == kControl) m.special.push_back(m.vocab[i]);
    if (types[i] == kUserDefined) m.added.push_back(m.vocab[i]);
  }
  for (const std::string& merge : f.get_strings("tokenizer.ggml.merges")) {
    const size_t space = merge.find(' ');
    if (space == std::string::npos || merge.find(' ', space + 1) != std::string::npos)
      throw Error(where + "tokenizer.ggml.merges entry \"" + merge + "\" is not two tokens separated by a space");
    m.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
  }
  try {
    return tok::Tokenizer(std::move(m));
  } catch (const Error& e) {  // tokens or merges that do not make a tokenizer
    throw Error(path.string() + ": " + e.what());
  }
}

}  // namespace vkm::io
