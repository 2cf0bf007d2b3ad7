// `vkmind chat` and `vkmind generate` driven through pipes, as a script would: answers against the library's
// for the same model and settings, and every kind of bad input answered with a message, never a crash.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/ops/common.hpp"
#include "model/generate/chat.hpp"
#include "model/generate/generate.hpp"
#include "model/generate/prompts.hpp"
#include "model/io/model_files.hpp"
#include "tests/generate/tiny_model.hpp"

#ifndef VKMIND_BINARY
#error "tests/CMakeLists.txt passes the vkmind binary's path as VKMIND_BINARY"
#endif

namespace vkm {
namespace {

using test::ctx;
using test::TinyModel;

std::filesystem::path tokenizer_file() { return test::data_dir() / "tokenizer/tiny/tokenizer.json"; }

// A model folder: config.json, model.safetensors and tokenizer.json.
std::filesystem::path save(const test::TempDir& dir, const std::string& name, const TinyModel& m) {
  const std::filesystem::path folder = dir.path / name;
  io::save_model(folder, m.layout, m.values);
  std::filesystem::copy_file(tokenizer_file(), folder / "tokenizer.json");
  return folder;
}

struct Outcome {
  int code;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// vkmind with `args` (shell words), `input` on stdin; its exit code, stdout and stderr.
Outcome vkmind(const test::TempDir& dir, const std::string& args, const std::string& input = "") {
  const std::filesystem::path in = dir.write("stdin.txt", input), out = dir.path / "stdout.txt", err = dir.path / "stderr.txt";
  const std::string cmd = std::string("'") + VKMIND_BINARY + "' " + args + " < '" + in.string() + "' > '" +
                          out.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  Outcome r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  EXPECT_EQ(r.err.find("[vulkan validation]"), std::string::npos) << r.err;
  return r;
}

// A JSON string value as vkmind writes it: invalid UTF-8 (which a random model writes) as U+FFFD.
std::string json_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The library's decoder as the commands set it up by default (--weights auto).
model::DecoderOptions greedy() {
  model::DecoderOptions o;
  o.weights = model::default_weights(ctx().info());
  o.sampling.temperature = 0;
  return o;
}

TEST(ChatCommand, ScriptedThroughAPipe) {
  const tok::Tokenizer t = tok::Tokenizer::load(tokenizer_file());
  const TinyModel m(7, test::tiny_config(t.vocab_size()));
  const test::TempDir dir;
  const std::filesystem::path folder = save(dir, "model", m);
  const Outcome r = vkmind(dir, "chat --model '" + folder.string() + "' --greedy --max-new-tokens 6",
                       "Hello there\n"
                       "\n"
                       "caf\xc3\n"
                       "/system Be brief.\n"
                       "What is this?\r\n"
                       "/bogus\n"
                       "/reset\n"
                       "Hello there\n"
                       "/exit\n"
                       "never read\n");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(count(r.err, "error: chat: the message is empty"), 1) << r.err;
  EXPECT_EQ(count(r.err, "error: chat: the message is not valid UTF-8"), 1) << r.err;
  EXPECT_EQ(count(r.err, "system prompt set; conversation reset"), 1) << r.err;
  EXPECT_EQ(count(r.err, "unknown command /bogus"), 1) << r.err;
  EXPECT_EQ(count(r.err, "[conversation reset]"), 1) << r.err;
  EXPECT_EQ(count(r.err, " tokens/s; prompt "), 3) << r.err;

  // The same conversation through the library.
  model::Decoder d(ctx(), m.layout, m.params, greedy());
  model::ChatSession chat(d, t, {"", 6});
  std::string want = chat.ask("Hello there").text + "\n";
  chat.set_system_prompt("Be brief.");
  want += chat.ask("What is this?").text + "\n";
  chat.reset();
  want += chat.ask("Hello there").text + "\n";
  EXPECT_EQ(r.out, want);
}

TEST(ChatCommand, BadModelFolders) {
  const test::TempDir dir;
  Outcome r = vkmind(dir, "chat --model '" + (dir.path / "nowhere").string() + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find((dir.path / "nowhere").string()), std::string::npos) << r.err;

  const TinyModel small;  // 300 tokens: the 722 of the tokenizer do not fit
  const std::filesystem::path mismatched = save(dir, "mismatched", small);
  r = vkmind(dir, "chat --model '" + mismatched.string() + "'", "hi\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("the tokenizer does not belong to this model"), std::string::npos) << r.err;

  const std::filesystem::path corrupt = save(dir, "corrupt", small);
  std::ofstream(corrupt / "config.json") << "{\"hidden_size\": ";
  r = vkmind(dir, "chat --model '" + corrupt.string() + "'", "hi\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;

  const std::filesystem::path no_tokenizer = save(dir, "no_tokenizer", small);
  std::filesystem::remove(no_tokenizer / "tokenizer.json");
  r = vkmind(dir, "chat --model '" + no_tokenizer.string() + "'", "hi\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("tokenizer"), std::string::npos) << r.err;

  r = vkmind(dir, "chat --model '" + mismatched.string() + "' --top-p 1.5", "hi\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--top-p must be in (0, 1]"), std::string::npos) << r.err;
}

TEST(GenerateCommand, PromptsFileToJsonl) {
  const tok::Tokenizer t = tok::Tokenizer::load(tokenizer_file());
  const TinyModel m(8, test::tiny_config(t.vocab_size()));
  const test::TempDir dir;
  const std::filesystem::path folder = save(dir, "model", m);
  const std::filesystem::path prompts = dir.write(
      "prompts.txt",
      "Tell me a story\n"
      "\n"
      R"({"conversations": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, )"
      R"({"role": "assistant", "content": "old answer"}]})" "\n"
      R"({"text": "Once upon"})" "\n");
  const std::filesystem::path out = dir.path / "answers.jsonl";
  const Outcome r = vkmind(dir, "generate --model '" + folder.string() + "' --prompts '" + prompts.string() + "' --out '" +
                                out.string() + "' --greedy --max-new-tokens 5 --batch 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("skipped 1 blank lines"), std::string::npos) << r.err;

  // Each answer as the library gives it alone.
  const model::PromptFile file = model::read_prompts(prompts, false);
  std::ifstream lines(out);
  std::string line;
  for (const model::Prompt& p : file.prompts) {
    ASSERT_TRUE(std::getline(lines, line));
    const nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j["line"], p.line);
    model::Decoder d(ctx(), m.layout, m.params, greedy());
    const model::Generated g = model::generate(d, {model::prompt_tokens(p, t, false)},
                                               {5, {t.token_id(tok::kImEnd), t.token_id(tok::kEndOfText)}})
                                   .sequences[0];
    const std::string text = json_text(t.decode(g.tokens));
    EXPECT_EQ(j["new_tokens"], g.tokens.size());
    EXPECT_EQ(j["finish_reason"], model::finish_name(g.finish));
    if (p.conversation) {
      ASSERT_EQ(j["conversations"].size(), 3u);  // the old answer replaced
      EXPECT_EQ(j["conversations"][2]["role"], "assistant");
      EXPECT_EQ(json_text(j["conversations"][2]["content"]), text);
    } else {
      EXPECT_EQ(j["prompt"], p.messages[0].content);
      EXPECT_EQ(json_text(j["response"]), text);
    }
  }
  EXPECT_FALSE(std::getline(lines, line));

  // --raw continues the text itself, without the chat template.
  const std::filesystem::path raw = dir.write("raw.txt", "Once upon a time\n");
  const Outcome rr = vkmind(dir, "generate --model '" + folder.string() + "' --prompts '" + raw.string() + "' --out '" +
                                     out.string() + "' --raw --greedy --max-new-tokens 4");
  ASSERT_EQ(rr.code, 0) << rr.err;
  model::Decoder d(ctx(), m.layout, m.params, greedy());
  const model::Generated g =
      model::generate(d, {t.encode("Once upon a time")}, {4, {t.token_id(tok::kImEnd), t.token_id(tok::kEndOfText)}})
          .sequences[0];
  const nlohmann::json j = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(j["prompt"], "Once upon a time");
  EXPECT_EQ(j["new_tokens"], g.tokens.size());
  EXPECT_EQ(json_text(j["response"]), json_text(t.decode(g.tokens)));
}

// --weights f16: the answer of a library decoder with f16 weights (which rounds the model's f32 values on the
// device as the command does on upload). The head's weights are below f16's range, so that f16 and f32 weights
// answer differently (f16 rounds them to zero: every logit ties). Other storages are refused by the flag.
TEST(GenerateCommand, F16Weights) {
  if (!ops::has_16bit(ctx())) GTEST_SKIP() << "no 16-bit support on " << ctx().info().name;
  const tok::Tokenizer t = tok::Tokenizer::load(tokenizer_file());
  const TinyModel m(test::tiny_config(t.vocab_size()), [&] {
    const TinyModel random(9, test::tiny_config(t.vocab_size()));
    std::vector<float> v = random.values;
    const model::ParamEntry& head = random.layout.entry("lm_head.weight");
    for (int64_t i = head.offset; i < head.offset + head.numel(); ++i) v[size_t(i)] *= 1e-9f;
    return v;
  }());
  const test::TempDir dir;
  const std::filesystem::path folder = save(dir, "model", m);
  const std::filesystem::path prompts = dir.write("raw.txt", "Once upon a time\n"), out = dir.path / "out.jsonl";
  const std::string args = "generate --model '" + folder.string() + "' --prompts '" + prompts.string() + "' --out '" +
                           out.string() + "' --raw --greedy --max-new-tokens 6 --weights ";
  const Outcome r = vkmind(dir, args + "f16");
  ASSERT_EQ(r.code, 0) << r.err;
  auto answer = [&](DType weights) {
    model::DecoderOptions o = greedy();
    o.weights = weights;
    model::Decoder d(ctx(), m.layout, m.params, o);
    const model::Generated g =
        model::generate(d, {t.encode("Once upon a time")}, {6, {t.token_id(tok::kImEnd), t.token_id(tok::kEndOfText)}})
            .sequences[0];
    return json_text(t.decode(g.tokens));
  };
  const std::string got = json_text(nlohmann::json::parse(slurp(out))["response"]);
  EXPECT_EQ(got, answer(DType::f16));
  EXPECT_NE(got, answer(DType::f32));

  const Outcome bad = vkmind(dir, args + "bf16");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--weights"), std::string::npos) << bad.err;
}

// A conversation over the context loses its oldest messages, never the system message or the last question.
TEST(GenerateCommand, LongConversationsLoseOldestMessages) {
  const tok::Tokenizer t = tok::Tokenizer::load(tokenizer_file());
  const TinyModel m(10, test::tiny_config(t.vocab_size()));
  const test::TempDir dir;
  nlohmann::json conversation = nlohmann::json::array({{{"role", "system"}, {"content", "Short."}}});
  for (int i = 0; i < 6; ++i)
    conversation.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "turn " + std::to_string(i) + " of some length"}});
  conversation.push_back({{"role", "user"}, {"content", "last question"}});
  const std::string line = nlohmann::json{{"conversations", conversation}}.dump();
  const std::filesystem::path prompts = dir.write("prompts.jsonl", line + "\n");

  model::Prompt p = model::read_prompts(prompts, false).prompts[0];
  const auto [tokens, dropped] = model::fit_prompt(p, t, false, "", 60);
  EXPECT_LT(tokens.size(), 60u);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(p.messages.front().content, "Short.");
  EXPECT_EQ(p.messages.back().content, "last question");
  EXPECT_EQ(tokens, model::prompt_tokens(p, t, false));

  const std::filesystem::path out = dir.path / "o.jsonl";
  const Outcome r = vkmind(dir, "generate --model '" + save(dir, "model", m).string() + "' --prompts '" +
                                    prompts.string() + "' --out '" + out.string() + "' --context 60 --max-new-tokens 3");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("prompts.jsonl:1: dropped the " + std::to_string(dropped) + " oldest messages"), std::string::npos)
      << r.err;
  const nlohmann::json j = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(j["dropped_messages"], dropped);
  EXPECT_EQ(j["conversations"].size(), conversation.size() + 1);  // the output keeps the whole conversation
}

TEST(GenerateCommand, BadPromptFiles) {
  const TinyModel m(9, test::tiny_config(722));
  const test::TempDir dir;
  const std::string model = "--model '" + save(dir, "model", m).string() + "' --out '" + (dir.path / "o.jsonl").string() + "'";
  auto with = [&](const std::string& text, const std::string& extra = "") {
    return vkmind(dir, "generate " + model + " --prompts '" + dir.write("p.txt", text).string() + "' " + extra);
  };
  const std::string p = (dir.path / "p.txt").string();
  struct Bad {
    std::string text, extra, want;
  };
  const Bad cases[] = {
      {"fine\n{\"text\": \n", "", p + ":2: not valid JSON"},
      {"ok\n\xff\n", "", p + ":2: not valid UTF-8"},
      {R"({"conversations": [{"role": "user", "content": "x"}]})" "\n", "--raw", p + ":1: --raw continues plain text"},
      {R"({"conversations": [{"role": "robot", "content": "x"}]})" "\n", "", p + ":1: unknown role \"robot\""},
      {R"({"conversations": [{"role": "user", "content": "  "}]})" "\n", "", p + ":1: empty prompt"},
      {R"({"prompt": "x"})" "\n", "", p + ":1: want {\"conversations\": [...]} or {\"text\": \"...\"}"},
      {"\n\n", "", p + ": no prompts"},
      {std::string(3000, 'a') + "\n", "--context 64", p + ":1: the prompt has"},
      {"fine\n", "--batch 0", "--batch must be at least 1"},
  };
  for (const Bad& b : cases) {
    const Outcome r = with(b.text, b.extra);
    EXPECT_EQ(r.code, 1) << b.want;
    EXPECT_NE(r.err.find(b.want), std::string::npos) << "want " << b.want << " in: " << r.err;
  }
  const Outcome missing = vkmind(dir, "generate " + model + " --prompts '" + (dir.path / "none.txt").string() + "'");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("none.txt: cannot open the prompts file"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace vkm
