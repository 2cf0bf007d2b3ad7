// `vkmind generate`: answers (or, with --raw, continuations) for every prompt of a file, decoded --batch at a
// time, written as JSONL in the order of the file.
#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/generate/generate.hpp"
#include "model/generate/prompts.hpp"
#include "tools/commands.hpp"
#include "tools/decoding.hpp"

namespace vkm::tools {

namespace {

struct GenerateFlags {
  std::string prompts, out, system;
  bool raw = false;
  int64_t batch = 8;
  DecodingFlags decoding;
};

nlohmann::json answer_json(const model::Prompt& p, const std::string& text, const model::Generated& g, int64_t dropped) {
  nlohmann::json j;
  j["line"] = p.line;
  if (p.conversation) {
    j["conversations"] = nlohmann::json::array();
    for (const auto& m : p.messages) j["conversations"].push_back({{"role", m.role}, {"content", m.content}});
    j["conversations"].push_back({{"role", "assistant"}, {"content", text}});
  } else {
    j["prompt"] = p.messages.front().content;
    j["response"] = text;
  }
  j["new_tokens"] = g.tokens.size();
  j["finish_reason"] = model::finish_name(g.finish);
  if (dropped > 0) j["dropped_messages"] = dropped;  // the oldest, to fit the context
  return j;
}

int generate(const GenerateFlags& f, const Common& common) {
  if (f.batch < 1) throw Error("--batch must be at least 1");
  const model::PromptFile file = model::read_prompts(f.prompts, f.raw);
  if (file.blank_lines > 0) std::fprintf(stderr, "%s: skipped %lld blank lines\n", f.prompts.c_str(), (long long)file.blank_lines);
  if (file.prompts.empty()) throw Error(f.prompts + ": no prompts");
  const int64_t batch = std::min<int64_t>(f.batch, int64_t(file.prompts.size()));
  const model::DecoderOptions options = decoder_options(f.decoding, batch);
  Context ctx(ContextOptions{common.device});
  const LoadedModel m(ctx, f.decoding.model, f.decoding.tokenizer, options.weights);
  model::Decoder decoder(ctx, m.layout, m.params, options);
  // A conversation over the context loses its oldest messages; a prompt still too long alone is an error.
  std::vector<std::vector<int32_t>> tokens;
  std::vector<int64_t> dropped;
  for (const model::Prompt& p : file.prompts) {
    model::Prompt fitted = p;
    auto [ids, n] = model::fit_prompt(fitted, m.tokenizer, f.raw, f.system, decoder.context());
    const std::string where = f.prompts + ":" + std::to_string(p.line) + ": ";
    if (int64_t(ids.size()) >= decoder.context())
      throw Error(where + "the prompt has " + std::to_string(ids.size()) + " tokens, which leaves no room for an answer " +
                  "in the context of " + std::to_string(decoder.context()) + " (--context)");
    if (n > 0)
      std::fprintf(stderr, "%sdropped the %lld oldest messages to fit the context of %lld tokens\n", where.c_str(),
                   (long long)n, (long long)decoder.context());
    tokens.push_back(std::move(ids));
    dropped.push_back(n);
  }
  model::GenerateOptions until{f.decoding.max_new_tokens, {}};
  for (std::string_view stop : {tok::kImEnd, tok::kEndOfText})
    if (const int32_t id = m.tokenizer.token_id(stop); id >= 0) until.stop.push_back(id);

  std::ofstream out(f.out, std::ios::binary);
  if (!out) throw Error(f.out + ": cannot write");
  const uint32_t seed = seed_of(f.decoding);
  int64_t done = 0, new_tokens = 0;
  double seconds = 0;
  for (size_t first = 0; first < tokens.size(); first += size_t(batch)) {
    // A short last batch repeats its last prompt in the spare sequences, whose answers are dropped.
    std::vector<std::vector<int32_t>> prompts;
    for (int64_t b = 0; b < batch; ++b) {
      const size_t i = std::min(first + size_t(b), tokens.size() - 1);
      prompts.push_back(tokens[i]);
      decoder.set_seed(b, seed + uint32_t(i));  // a prompt's sample does not depend on its batch
    }
    decoder.reset();
    const model::GenerateResult r = model::generate(decoder, prompts, until);
    seconds += r.prefill_seconds + r.decode_seconds;
    for (int64_t b = 0; b < batch && first + size_t(b) < tokens.size(); ++b) {
      const model::Generated& g = r.sequences[size_t(b)];
      const model::Prompt& p = file.prompts[first + size_t(b)];
      // Text the model wrote may hold invalid UTF-8; JSON gets U+FFFD in its place.
      out << answer_json(p, m.tokenizer.decode(g.tokens), g, dropped[first + size_t(b)])
                 .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << '\n';
      new_tokens += int64_t(g.tokens.size());
      ++done;
    }
    out.flush();
    if (!out) throw Error(f.out + ": write failed (disk full?)");
    std::fprintf(stderr, "\r%lld/%zu prompts, %lld new tokens, %.1f tokens/s", (long long)done, tokens.size(),
                 (long long)new_tokens, seconds > 0 ? double(new_tokens) / seconds : 0.0);
  }
  std::fprintf(stderr, "\nwrote %s\n", f.out.c_str());
  return 0;
}

}  // namespace

void add_generate(CLI::App& app, const Common& common, int& exit_code) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* sub = app.add_subcommand("generate", "Answer every prompt of a file (one per line, or JSONL) into JSONL");
  sub->add_option("--prompts", f->prompts, "One prompt per line: text, {\"text\": ...} or {\"conversations\": [...]}")
      ->required();
  sub->add_option("--out", f->out, "JSONL output, one line per prompt")->required();
  sub->add_flag("--raw", f->raw, "Continue plain text (pretrained models) instead of answering in ChatML");
  sub->add_option("--batch", f->batch, "Prompts decoded side by side")->capture_default_str();
  sub->add_option("--system", f->system, "System prompt for conversations that bring none");
  add_decoding_flags(sub, f->decoding);
  on_run(sub, exit_code, [f, &common] { return generate(*f, common); });
}

}  // namespace vkm::tools
