#include "model/io/export.hpp"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/io/gguf_model.hpp"
#include "model/io/model_files.hpp"

namespace vkm::io {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace {

void write_json(const fs::path& path, const ojson& j) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) throw Error(path.string() + ": cannot write (disk full or no permission?)");
}

// A token's id, or null when the tokenizer lacks it.
ojson id_of(const tok::Tokenizer& tokenizer, std::string_view token) {
  const int32_t id = tokenizer.token_id(token);
  return id >= 0 ? ojson(id) : ojson(nullptr);
}

}  // namespace

void export_hf(const fs::path& dir, const model::ParamLayout& layout, std::span<const float> flat,
               const tok::Tokenizer& tokenizer, DType dtype) {
  if (tokenizer.vocab_size() > layout.config().vocab)
    throw Error("the tokenizer has " + std::to_string(tokenizer.vocab_size()) + " tokens but the model's vocab_size is " +
                std::to_string(layout.config().vocab));
  save_model(dir, layout, flat, dtype);

  // MiniMind's roles, as Tokenizer::save names them in tokenizer_config.json.
  const ojson bos = id_of(tokenizer, tok::kImStart), eos = id_of(tokenizer, tok::kImEnd),
              pad = id_of(tokenizer, tok::kEndOfText);
  std::ifstream in(dir / "config.json");
  ojson config = ojson::parse(in);
  config["bos_token_id"] = bos;
  config["eos_token_id"] = eos;
  config["pad_token_id"] = pad;
  write_json(dir / "config.json", config);

  // Sampling as MiniMind's eval_model.py samples; transformers' generate() reads these defaults.
  write_json(dir / "generation_config.json", {{"bos_token_id", bos},
                                              {"eos_token_id", eos},
                                              {"pad_token_id", pad},
                                              {"do_sample", true},
                                              {"temperature", 0.85},
                                              {"top_p", 0.85}});
  tokenizer.save(dir);
}

ExportSummary export_model(const ExportOptions& o) {
  if (o.format != "hf" && o.format != "gguf") throw Error("--format must be hf or gguf, not '" + o.format + "'");
  const bool gguf = o.format == "gguf";
  const std::string dtype = !o.dtype.empty() ? o.dtype : gguf ? "f16" : "f32";  // what each ecosystem expects
  const std::pair<const char*, GgmlType> types[] = {
      {"f32", GgmlType::f32}, {"f16", GgmlType::f16}, {"bf16", GgmlType::bf16}, {"q8_0", GgmlType::q8_0}};
  const auto type = std::find_if(std::begin(types), std::end(types), [&](auto& t) { return dtype == t.first; });
  if (type == std::end(types)) throw Error("--dtype must be f32, f16, bf16 or q8_0, not '" + dtype + "'");
  if (type->second == GgmlType::q8_0 && !gguf)
    throw Error("--dtype q8_0 is for --format gguf; Hugging Face folders take f32, f16 or bf16");

  const ModelFiles m = load_model(o.model);
  const tok::Tokenizer tokenizer = load_model_tokenizer(o.model, o.tokenizer);
  const model::ParamLayout layout(m.config);
  if (gguf) {
    const std::string name = !o.name.empty() ? o.name : fs::absolute(o.model).lexically_normal().filename().string();
    save_gguf(o.out, layout, m.params, tokenizer, type->second, name);
  } else {
    const DType t = type->second == GgmlType::f32 ? DType::f32 : type->second == GgmlType::f16 ? DType::f16 : DType::bf16;
    export_hf(o.out, layout, m.params, tokenizer, t);
  }
  return {dtype, layout.parameter_count(), tokenizer.vocab_size()};
}

}  // namespace vkm::io
