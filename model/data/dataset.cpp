#include "model/data/dataset.hpp"

#include <nlohmann/json.hpp>

namespace vkm::data {

using nlohmann::json;

const char* format_name(Format f) { return f == Format::sft ? "sft" : "pretrain"; }

namespace {

void append(std::vector<int32_t>& ids, std::vector<uint8_t>& mask, const std::vector<int32_t>& seg, uint8_t m) {
  ids.insert(ids.end(), seg.begin(), seg.end());
  mask.insert(mask.end(), seg.size(), m);
}

std::string encode_sft(const json& j, const tok::Tokenizer& tk, Sample& out) {
  auto it = j.find("conversations");
  if (it == j.end()) return "no \"conversations\" field";
  if (!it->is_array()) return "\"conversations\" is not a list";
  if (it->empty()) return "\"conversations\" is empty";
  const int32_t im_end = tk.token_id(tok::kImEnd);
  if (im_end < 0) return "the tokenizer has no <|im_end|> token";
  const std::vector<int32_t> newline = tk.encode("\n");
  size_t k = 0;
  for (const json& turn : *it) {
    const std::string where = "conversations[" + std::to_string(k++) + "]";
    if (!turn.is_object()) return where + " is not an object";
    auto r = turn.find("role");
    auto c = turn.find("content");
    if (r == turn.end() || !r->is_string()) return where + " has no string \"role\"";
    if (c == turn.end() || !c->is_string()) return where + " has no string \"content\"";
    const std::string& role = r->get_ref<const std::string&>();
    if (role != "system" && role != "user" && role != "assistant")
      return where + " has role \"" + role + "\" (expected system, user or assistant)";
    const uint8_t m = role == "assistant" ? 1 : 0;
    std::string header(tok::kImStart);
    header.append(role).append("\n");
    append(out.ids, out.mask, tk.encode(header), 0);
    append(out.ids, out.mask, tk.encode(c->get_ref<const std::string&>()), m);
    out.ids.push_back(im_end);
    out.mask.push_back(m);
    append(out.ids, out.mask, newline, 0);
  }
  return "";
}

}  // namespace

std::string encode_record(std::string_view line, Format format, const tok::Tokenizer& tk, Sample& out) {
  out.ids.clear();
  out.mask.clear();
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    return std::string("malformed JSON: ") + e.what();
  }
  if (!j.is_object()) return "expected a JSON object";
  if (format == Format::sft) return encode_sft(j, tk, out);
  auto it = j.find("text");
  if (it == j.end()) return "no \"text\" field";
  if (!it->is_string()) return "\"text\" is not a string";
  out.ids = tk.encode(it->get_ref<const std::string&>());
  return "";
}

}  // namespace vkm::data
