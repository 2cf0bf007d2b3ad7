#include "model/generate/prompts.hpp"

#include <algorithm>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/tokenizer/utf8.hpp"

namespace vkm::model {

namespace {

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// A conversation from MiniMind's JSON: role and content strings, roles system, user or assistant.
std::vector<tok::Message> messages_of(const nlohmann::json& list, const std::function<void(const std::string&)>& fail) {
  if (!list.is_array() || list.empty()) fail("\"conversations\" must be a non-empty list of messages");
  std::vector<tok::Message> out;
  for (const auto& m : list) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      fail("each message must be {\"role\": ..., \"content\": ...} with string values");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant")
      fail("unknown role \"" + role + "\" (system, user or assistant)");
    out.push_back({role, m["content"]});
  }
  if (out.back().role == "assistant") out.pop_back();  // the answer to generate anew
  if (out.empty() || out.back().role != "user") fail("the conversation must end with a user message (or its answer)");
  if (blank(out.back().content)) fail("empty prompt");
  return out;
}

}  // namespace

PromptFile read_prompts(const std::filesystem::path& file, bool raw) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open the prompts file");
  PromptFile out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    auto fail = [&](const std::string& why) { throw Error(file.string() + ":" + std::to_string(n) + ": " + why); };
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) {
      ++out.blank_lines;
      continue;
    }
    if (!tok::valid_utf8(line)) fail("not valid UTF-8");
    Prompt p;
    p.line = n;
    std::string text = line;
    if (line[line.find_first_not_of(" \t")] == '{') {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail(std::string("not valid JSON: ") + e.what());
      }
      if (j.is_object() && j.contains("conversations")) {
        if (raw) fail("--raw continues plain text or {\"text\": ...}, not conversations");
        p.conversation = true;
        p.messages = messages_of(j["conversations"], fail);
        out.prompts.push_back(std::move(p));
        continue;
      }
      if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
        fail("want {\"conversations\": [...]} or {\"text\": \"...\"}");
      text = j["text"];
      if (blank(text)) fail("empty prompt");
    }
    p.messages = {{"user", text}};
    out.prompts.push_back(std::move(p));
  }
  return out;
}

std::vector<int32_t> prompt_tokens(const Prompt& p, const tok::Tokenizer& t, bool raw, std::string_view system) {
  if (raw) return t.encode(p.messages.front().content);
  return t.encode(tok::apply_chat_template(p.messages, true, system));
}

std::pair<std::vector<int32_t>, int64_t> fit_prompt(Prompt& p, const tok::Tokenizer& t, bool raw, std::string_view system,
                                                    int64_t limit) {
  std::vector<int32_t> tokens = prompt_tokens(p, t, raw, system);
  int64_t dropped = 0;
  const size_t first = !p.messages.empty() && p.messages.front().role == "system" ? 1 : 0;
  while (int64_t(tokens.size()) >= limit && p.messages.size() > first + 1) {
    p.messages.erase(p.messages.begin() + int64_t(first));
    ++dropped;
    tokens = prompt_tokens(p, t, raw, system);
  }
  return {std::move(tokens), dropped};
}

}  // namespace vkm::model
