// `vkmind chat`: a multi-turn conversation with a model, answers streamed as they are sampled. Reads one message
// per line from stdin (with a prompt when stdin is a terminal, so it can also be scripted through a pipe);
// answers go to stdout, everything else (statistics, notes, errors) to stderr.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "engine/error.hpp"
#include "model/generate/chat.hpp"
#include "tools/commands.hpp"
#include "tools/decoding.hpp"

namespace vkm::tools {

namespace {

struct ChatFlags {
  std::string system;
  DecodingFlags decoding;
};

constexpr const char* kCommands = "/reset, /system TEXT, /exit";

void note(const std::string& text) { std::fprintf(stderr, "[%s]\n", text.c_str()); }

void report(const model::ChatReply& r, int64_t max_new_tokens, int64_t context) {
  if (r.dropped_turns > 0)
    note("dropped the " + std::to_string(r.dropped_turns) + " oldest turn" + (r.dropped_turns > 1 ? "s" : "") +
         " to fit the context of " + std::to_string(context) + " tokens");
  if (r.finish == model::Finish::length) note("stopped at --max-new-tokens " + std::to_string(max_new_tokens));
  if (r.finish == model::Finish::context)
    note("stopped: the context of " + std::to_string(context) + " tokens is full; older turns will be dropped");
  const double rate = r.decode_seconds > 0 ? double(r.decode_steps) / r.decode_seconds : 0;
  char line[200];
  std::snprintf(line, sizeof line, "%lld tokens, %.1f tokens/s; prompt %lld tokens in %.2f s",
                (long long)r.new_tokens, rate, (long long)r.prompt_tokens, r.prefill_seconds);
  note(line);
}

int chat(const ChatFlags& f, const Common& common) {
  const model::DecoderOptions options = decoder_options(f.decoding, 1);  // bad flags first, before any loading
  Context ctx(ContextOptions{common.device});
  const LoadedModel m(ctx, f.decoding.model, f.decoding.tokenizer, options.weights);
  model::Decoder decoder(ctx, m.layout, m.params, options);
  decoder.set_seed(0, seed_of(f.decoding));
  model::ChatSession session(decoder, m.tokenizer, {f.system, f.decoding.max_new_tokens});
  const bool terminal = isatty(STDIN_FILENO);
  if (terminal)
    std::fprintf(stderr, "vkmind chat: %s (%lld parameters) on %s, context %lld tokens. Commands: %s\n",
                 f.decoding.model.c_str(), (long long)m.layout.parameter_count(), ctx.info().name.c_str(),
                 (long long)decoder.context(), kCommands);
  std::string line;
  while (true) {
    if (terminal) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        session.reset();
        note("conversation reset");
      } else if (line == "/system" || line.starts_with("/system ")) {
        session.set_system_prompt(line.size() > 8 ? line.substr(8) : "");
        note(session.system_prompt().empty() ? "no system prompt; conversation reset"
                                             : "system prompt set; conversation reset");
      } else if (line.starts_with("/") && line.find(' ') == std::string::npos && line.size() > 1) {
        note("unknown command " + line + " (commands: " + kCommands + ")");
      } else {
        const model::ChatReply r = session.ask(line, [](std::string_view piece) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        });
        std::fputc('\n', stdout);
        std::fflush(stdout);
        report(r, f.decoding.max_new_tokens, decoder.context());
      }
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  return 0;
}

}  // namespace

void add_chat(CLI::App& app, const Common& common, int& exit_code) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* sub = app.add_subcommand("chat", "Talk with a model: one message per line, answers streamed");
  sub->add_option("--system", f->system, "System prompt (also /system TEXT)");
  add_decoding_flags(sub, f->decoding);
  on_run(sub, exit_code, [f, &common] { return chat(*f, common); });
}

}  // namespace vkm::tools
