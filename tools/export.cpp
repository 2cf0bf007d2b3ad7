// `vkmind export`: a model (a vkmind or Hugging Face folder, or a GGUF file) as a Hugging Face folder that
// transformers loads, or as a GGUF file that llama.cpp and ollama run.
#include <cstdio>

#include "model/io/export.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

void add_export(CLI::App& app, const Common&, int& exit_code) {
  auto o = std::make_shared<io::ExportOptions>();
  CLI::App* sub = app.add_subcommand("export", "Write a model as a Hugging Face folder or a GGUF file (llama.cpp, ollama)");
  sub->add_option("--model", o->model, "Model folder (config.json + model.safetensors) or GGUF file")->required();
  sub->add_option("--format", o->format, "hf: a transformers LlamaForCausalLM folder; gguf: a llama.cpp file")
      ->required()->check(CLI::IsMember({"hf", "gguf"}));
  sub->add_option("--out", o->out, "Output folder (hf) or file (gguf)")->required();
  sub->add_option("--dtype", o->dtype, "Weight storage: f32, f16, bf16, or q8_0 for gguf (default: f32 for hf, f16 for gguf)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}));
  sub->add_option("--tokenizer", o->tokenizer, "tokenizer.json (default: the model's own)");
  sub->add_option("--name", o->name, "general.name of a GGUF file (default: the model's file name)");
  on_run(sub, exit_code, [o] {
    const io::ExportSummary s = io::export_model(*o);
    std::printf("wrote %s: %s, %s, %lld parameters, %d tokens\n", o->out.c_str(),
                o->format == "gguf" ? "GGUF (llama)" : "Hugging Face LlamaForCausalLM", s.dtype.c_str(),
                (long long)s.parameters, s.tokens);
    return 0;
  });
}

}  // namespace vkm::tools
