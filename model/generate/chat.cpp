#include "model/generate/chat.hpp"

#include <algorithm>

#include "engine/error.hpp"
#include "model/tokenizer/utf8.hpp"

namespace vkm::model {

namespace {

bool blank(std::string_view s) {
  return std::ranges::all_of(s, [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// s with each stretch of bytes that is not UTF-8 replaced by U+FFFD, as a lossy decode shows it: a model may
// write bytes that never form a character.
std::string lossy(std::string_view s) {
  std::string out;
  size_t subpart = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t n = tok::utf8_char(s, i, &subpart);
    out.append(n > 0 ? s.substr(i, n) : std::string_view("\xEF\xBF\xBD"));
    i += n > 0 ? n : subpart;
  }
  return out;
}

}  // namespace

ChatSession::ChatSession(Decoder& decoder, const tok::Tokenizer& tokenizer, ChatOptions options)
    : decoder_(decoder), tokenizer_(tokenizer), options_(std::move(options)) {
  const int64_t V = decoder.layout().config().vocab;
  if (decoder.batch() != 1)
    throw Error("chat: the decoder must hold one sequence, not " + std::to_string(decoder.batch()));
  if (tokenizer.vocab_size() > V)
    throw Error("chat: the tokenizer has " + std::to_string(tokenizer.vocab_size()) +
                " tokens, more than the model's vocabulary of " + std::to_string(V) +
                ": the tokenizer does not belong to this model");
  const int32_t im_end = tokenizer.token_id(tok::kImEnd), end_of_text = tokenizer.token_id(tok::kEndOfText);
  if (tokenizer.token_id(tok::kImStart) < 0 || im_end < 0)
    throw Error("chat: the tokenizer has no <|im_start|> or <|im_end|> token; chat needs ChatML's special tokens");
  if (options_.max_new_tokens < 1)
    throw Error("chat: max_new_tokens must be at least 1, given " + std::to_string(options_.max_new_tokens));
  stop_ = {im_end};
  if (end_of_text >= 0) stop_.push_back(end_of_text);
  after_answer_ = tokenizer.encode(std::string(tok::kImEnd) + "\n");
  answer_start_ = tokenizer.encode(tok::apply_chat_template({}, true));
  set_system_prompt(options_.system_prompt);
}

std::vector<int32_t> ChatSession::encode_block(std::string_view role, std::string_view content) const {
  return tokenizer_.encode(tok::apply_chat_template({{std::string(role), std::string(content)}}, false));
}

void ChatSession::reset() {
  turns_.clear();
  decoder_.reset();
  cached_ = 0;
}

void ChatSession::set_system_prompt(std::string text) {
  if (!tok::valid_utf8(text)) throw Error("chat: the system prompt is not valid UTF-8");
  system_ = blank(text) ? std::vector<int32_t>{} : encode_block("system", text);
  options_.system_prompt = std::move(text);
  reset();
}

std::vector<int32_t> ChatSession::conversation() const {
  std::vector<int32_t> all = system_;
  for (const auto& t : turns_) all.insert(all.end(), t.begin(), t.end());
  return all;
}

ChatReply ChatSession::ask(std::string_view message, const std::function<void(std::string_view)>& on_text) {
  if (blank(message)) throw Error("chat: the message is empty");
  if (!tok::valid_utf8(message)) throw Error("chat: the message is not valid UTF-8");
  std::vector<int32_t> turn = encode_block("user", message);
  turn.insert(turn.end(), answer_start_.begin(), answer_start_.end());

  // Drop the oldest turns until this one fits with room for an answer (a quarter of the context, or the whole
  // token budget when that is smaller); refuse a message that leaves no room at all.
  const int64_t S = decoder_.context(), room = std::min(options_.max_new_tokens, std::max<int64_t>(S / 4, 1));
  int64_t total = int64_t(conversation().size() + turn.size()), dropped = 0;
  for (; dropped < int64_t(turns_.size()) && total + room > S; ++dropped) total -= int64_t(turns_[size_t(dropped)].size());
  if (total >= S)
    throw Error("chat: the message takes " + std::to_string(total) + " tokens with the system prompt, which leaves no " +
                "room for an answer in the context of " + std::to_string(S) + " tokens; shorten it");
  ChatReply reply;
  reply.dropped_turns = dropped;
  if (dropped > 0) {
    turns_.erase(turns_.begin(), turns_.begin() + dropped);
    decoder_.reset();
    cached_ = 0;
  }

  // What the cache lacks: the conversation from cached_ on, then the new turn.
  std::vector<int32_t> feed = conversation();
  feed.erase(feed.begin(), feed.begin() + cached_);
  feed.insert(feed.end(), turn.begin(), turn.end());
  reply.prompt_tokens = int64_t(feed.size());

  tok::StreamDecoder stream(tokenizer_);
  auto emit = [&](const std::string& bytes) {
    if (bytes.empty()) return;
    const std::string piece = lossy(bytes);
    reply.text += piece;
    if (on_text) on_text(piece);
  };
  GenerateResult r;
  try {
    r = generate(decoder_, {feed}, {options_.max_new_tokens, stop_}, [&](int64_t, int32_t id) { emit(stream.push(id)); });
  } catch (...) {
    // The cache is in an unknown state: the next turn prefills the whole conversation.
    decoder_.reset();
    cached_ = 0;
    throw;
  }
  emit(stream.flush());
  const Generated& g = r.sequences[0];
  turn.insert(turn.end(), g.tokens.begin(), g.tokens.end());
  turn.insert(turn.end(), after_answer_.begin(), after_answer_.end());
  turns_.push_back(std::move(turn));
  cached_ = decoder_.length(0);  // the conversation up to the answer's last token, which was never embedded
  reply.new_tokens = int64_t(g.tokens.size());
  reply.finish = g.finish;
  reply.decode_steps = r.steps;
  reply.prefill_seconds = r.prefill_seconds;
  reply.decode_seconds = r.decode_seconds;
  return reply;
}

}  // namespace vkm::model
