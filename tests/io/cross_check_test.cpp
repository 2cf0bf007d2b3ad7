// Exported models run by other implementations give vkmind's next-token probabilities:
//   - the Hugging Face folder, by an independent LLaMA forward written with PyTorch (tests/io/llama_forward.py,
//     float64); skipped where no Python imports torch (CI does not install it; Debian's python3-torch works);
//   - the GGUF file, by llama.cpp itself through node-llama-cpp (tests/io/llamacpp_forward.mjs), which also
//     tokenizes with the embedded tokenizer; skipped unless VKMIND_NODE_LLAMA_CPP names an installed
//     node-llama-cpp folder (npm install node-llama-cpp; its prebuilt llama.cpp comes with it).
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/io/gguf_model.hpp"
#include "model/io/export.hpp"
#include "model/transformer.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::io {
namespace {

using test::ctx;
namespace fs = std::filesystem;

constexpr int64_t B = 2, T = 13;

// A Python that imports torch: the one on PATH, else Debian's (python3-torch installs there, and a pyenv or
// virtual environment earlier on PATH hides it). Empty when there is none.
std::string python_with_torch() {
  for (const char* python : {"python3", "/usr/bin/python3"})
    if (std::system((std::string(python) + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0) return python;
  return {};
}

// One shell word holding `s` whatever it contains.
std::string shell_arg(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}
std::string shell_arg(const fs::path& p) { return shell_arg(p.string()); }

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// A tiny model whose probabilities are far from uniform (larger weights, norm weights other than 1), so an error
// in any layer shows, and B*T random token ids.
struct CheckModel {
  model::ParamLayout layout;
  std::vector<float> params;
  std::vector<int32_t> ids;
  tok::Tokenizer tokenizer = tok::Tokenizer::load(test::data_dir() / "tokenizer" / "tiny" / "tokenizer.json");
};

CheckModel check_model(bool tied) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = 730;  // the tokenizer's 722 tokens and rows no token uses
  c.tie_embeddings = tied;
  c.initializer_range = 0.3;
  CheckModel m{model::ParamLayout(c), {}, {}};
  m.params = model::init_params(m.layout, 17);
  std::mt19937 g(3);
  for (const auto& e : m.layout.entries())
    if (e.kind == model::ParamKind::norm)
      for (int64_t i = 0; i < e.numel(); ++i) m.params[size_t(e.offset + i)] = 0.5f + float(g() % 1000) / 1000.0f;
  for (int64_t i = 0; i < B * T; ++i) m.ids.push_back(int32_t(g() % uint32_t(c.vocab)));
  return m;
}

// vkmind's next-token probabilities [B*T, V]. The model's program ends in the fused cross-entropy, which leaves
// dlogits = (softmax - onehot(target)) * mask * grad_scale / count in the logits; with every position counted
// and grad_scale = count that is softmax - onehot, so adding the onehot back gives softmax.
std::vector<double> vkmind_probs(const CheckModel& m) {
  Arena arena(ctx(), "params");
  const model::ParamBuffers buf = model::allocate_params(arena, m.layout, false);
  ctx().write(buf.values, m.params);
  model::Transformer tf(ctx(), m.layout, B, T);
  ctx().write(tf.ids(), m.ids);
  ctx().write(tf.targets(), m.ids);  // any target in range
  test::write_values(tf.mask(), std::vector<float>(size_t(B * T), 1.0f));
  test::write_values(tf.grad_scale(), std::vector<float>{float(B * T)});
  test::run([&](Program& p) { tf.record(p, buf.values); });
  const std::vector<float> d = ctx().read<float>(tf.logits());
  std::vector<double> probs(d.begin(), d.end());
  const size_t V = size_t(m.layout.config().vocab);
  for (size_t r = 0; r < m.ids.size(); ++r) probs[r * V + size_t(m.ids[r])] += 1.0;
  return probs;
}

// Their relative L2 error, printed with the largest probability (which must be far from uniform).
double compare(const std::vector<double>& got, const std::vector<double>& want, const char* what) {
  EXPECT_EQ(got.size(), want.size());
  double top = 0;
  for (double p : want) top = std::max(top, p);
  const double err = test::rel_l2(got, want);
  std::printf("  next-token probabilities: relative L2 %.2e against %s (largest probability %.3f)\n", err, what, top);
  EXPECT_GT(top, 0.2) << "near-uniform probabilities would hide errors";
  return err;
}

class TorchCheck : public testing::TestWithParam<bool> {};

TEST_P(TorchCheck, HuggingFaceExportGivesVkmindsProbabilities) {
  const std::string python = python_with_torch();
  if (python.empty()) GTEST_SKIP() << "PyTorch is not installed (python3 -c 'import torch' fails); "
                                      "apt-get install python3-torch runs this check";
  test::TempDir d;
  const CheckModel m = check_model(GetParam());
  export_hf(d.path / "hf", m.layout, m.params, m.tokenizer, DType::f32);
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t b = 0; b < B; ++b) rows.push_back(std::vector<int32_t>(m.ids.begin() + b * T, m.ids.begin() + (b + 1) * T));
  std::ofstream(d.path / "ids.json") << nlohmann::json{{"ids", rows}}.dump();

  const std::string cmd = python + " " + shell_arg(fs::path(__FILE__).parent_path() / "llama_forward.py") + " " +
                          shell_arg(d.path / "hf") + " " + shell_arg(d.path / "ids.json") + " " + shell_arg(d.path / "out.json");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<double> torch_probs = read_json(d.path / "out.json").get<std::vector<double>>();
  for (double& p : torch_probs) p = std::exp(p);
  EXPECT_LE(compare(vkmind_probs(m), torch_probs, "PyTorch"), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Tied, TorchCheck, testing::Bool());

class LlamaCppCheck : public testing::TestWithParam<GgmlType> {};

TEST_P(LlamaCppCheck, GgufExportGivesVkmindsProbabilitiesAndTokens) {
  const char* module = std::getenv("VKMIND_NODE_LLAMA_CPP");
  if (!module || !*module)
    GTEST_SKIP() << "set VKMIND_NODE_LLAMA_CPP to an installed node-llama-cpp folder (npm install node-llama-cpp) "
                    "to run llama.cpp on the exported GGUF";
  test::TempDir d;
  const CheckModel m = check_model(GetParam() != GgmlType::f32);  // untied with F32, tied otherwise
  save_gguf(d.path / "m.gguf", m.layout, m.params, m.tokenizer, GetParam());
  const std::string text = tok::apply_chat_template({{"user", "Hello, wörld! 12345  tabs\tand\nlines"}}, true);
  // llama.cpp evaluates one sequence: the first row of ids.
  std::ofstream(d.path / "ids.json") << nlohmann::json(std::vector<int32_t>(m.ids.begin(), m.ids.begin() + T)).dump();
  const std::string cmd = "node " + shell_arg(fs::path(__FILE__).parent_path() / "llamacpp_forward.mjs") + " " +
                          shell_arg(std::string(module)) + " " + shell_arg(d.path / "m.gguf") + " " + shell_arg(d.path / "ids.json") + " " +
                          shell_arg(text) + " " + shell_arg(d.path / "out.json");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const nlohmann::json out = read_json(d.path / "out.json");
  EXPECT_EQ(out["tokens"].get<std::vector<int32_t>>(), m.tokenizer.encode(text));

  std::vector<double> llama_probs;
  for (const auto& row : out["probs"]) for (double p : row) llama_probs.push_back(p);
  // vkmind runs the weights as the file holds them (rounded to F16, Q8_0 dequantized). llama.cpp's CPU products
  // also round the activations to the weights' type (F16: 3e-4 measured; Q8_0, 8 bits a value: 8e-2 with these
  // deliberately large weights), which the looser bounds allow for; a wrong layout gives errors near 1.
  CheckModel stored = m;
  stored.params = load_gguf(d.path / "m.gguf").params;
  std::vector<double> probs = vkmind_probs(stored);
  probs.resize(size_t(T * m.layout.config().vocab));
  const double err = compare(probs, llama_probs, "llama.cpp");
  EXPECT_LE(err, GetParam() == GgmlType::f32 ? 1e-4 : GetParam() == GgmlType::f16 ? 2e-3 : 0.15);
}

INSTANTIATE_TEST_SUITE_P(Types, LlamaCppCheck, testing::Values(GgmlType::f32, GgmlType::f16, GgmlType::q8_0),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

}  // namespace
}  // namespace vkm::io
