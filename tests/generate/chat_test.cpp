// Generation (stop tokens, budgets, the context's end) and the multi-turn chat session over a decoder, with a
// small random model whose vocabulary is the test tokenizer's.
#include "model/generate/chat.hpp"

#include <algorithm>
#include <string>

#include "engine/error.hpp"
#include "model/generate/generate.hpp"
#include "model/tokenizer/utf8.hpp"
#include "tests/generate/tiny_model.hpp"

namespace vkm {
namespace {

using model::ChatOptions;
using model::ChatSession;
using model::Decoder;
using model::DecoderOptions;
using model::Finish;
using test::ctx;
using test::TinyModel;

tok::Tokenizer tokenizer() { return tok::Tokenizer::load(test::data_dir() / "tokenizer/tiny/tokenizer.json"); }

model::ModelConfig config_for(const tok::Tokenizer& t) { return test::tiny_config(t.vocab_size()); }

DecoderOptions greedy(int64_t context = 0) {
  DecoderOptions o;
  o.context = context;
  o.sampling.temperature = 0;
  return o;
}

// Each sequence stops on its own: at a stop token (left out), at its budget, or at the end of the context.
TEST(Generate, StopsPerSequence) {
  const TinyModel m;
  const int64_t V = m.config.vocab;
  const std::vector<std::vector<int32_t>> prompts{test::random_ids(5, V, 1), test::random_ids(9, V, 2)};
  DecoderOptions o = greedy(24);
  o.batch = 2;
  // Greedy first: which tokens come, so that one of them can be made a stop token.
  Decoder d(ctx(), m.layout, m.params, o);
  const model::GenerateResult free = model::generate(d, prompts, {100, {}});
  ASSERT_EQ(free.sequences.size(), 2u);
  // Both run into the context: 24 positions hold the prompt and all new tokens but the last.
  EXPECT_EQ(free.sequences[0].finish, Finish::context);
  EXPECT_EQ(free.sequences[0].tokens.size(), 24u - 5 + 1);
  EXPECT_EQ(free.sequences[1].tokens.size(), 24u - 9 + 1);
  EXPECT_EQ(free.steps, int64_t(24 - 5));

  const int32_t stop = free.sequences[1].tokens[3];
  const auto first_stop = std::ranges::find(free.sequences[1].tokens, stop) - free.sequences[1].tokens.begin();
  d.reset();
  std::vector<std::vector<int32_t>> streamed(2);
  const model::GenerateResult r =
      model::generate(d, prompts, {6, {stop}}, [&](int64_t b, int32_t id) { streamed[size_t(b)].push_back(id); });
  const std::vector<int32_t> want0(free.sequences[0].tokens.begin(), free.sequences[0].tokens.begin() + 6);
  if (std::ranges::find(want0, stop) == want0.end()) {
    EXPECT_EQ(r.sequences[0].finish, Finish::length);
    EXPECT_EQ(r.sequences[0].tokens, want0);
  }
  EXPECT_EQ(r.sequences[1].finish, Finish::stop);
  EXPECT_EQ(r.sequences[1].tokens,
            std::vector<int32_t>(free.sequences[1].tokens.begin(), free.sequences[1].tokens.begin() + first_stop));
  EXPECT_EQ(streamed[0], r.sequences[0].tokens);
  EXPECT_EQ(streamed[1], r.sequences[1].tokens);
  test::expect_error("max_new_tokens must be at least 1", [&] { model::generate(d, prompts, {0, {}}); });
}

// Turn after turn, only what the cache lacks is prefilled, and the answer is what a fresh decoder gives for the
// whole conversation; the conversation is the chat template's rendering.
TEST(Chat, TurnsReuseTheCache) {
  const tok::Tokenizer t = tokenizer();
  const TinyModel m(3, config_for(t));
  Decoder d(ctx(), m.layout, m.params, greedy());
  ChatSession chat(d, t, {"You are terse.", 12});
  std::string streamed;
  const model::ChatReply first = chat.ask("Hello there", [&](std::string_view s) { streamed += s; });
  EXPECT_EQ(streamed, first.text);
  EXPECT_EQ(first.finish == Finish::length, first.new_tokens == 12);
  EXPECT_EQ(first.prompt_tokens,
            int64_t(t.encode(tok::apply_chat_template({{"user", "Hello there"}}, true, "You are terse.")).size()));

  const std::vector<int32_t> before = chat.conversation();
  const model::ChatReply second = chat.ask("And now?");
  const std::vector<int32_t> after = chat.conversation();
  // The cache held all but the first answer's closing tokens and its last token (sampled, never embedded).
  const std::vector<int32_t> turn = t.encode(tok::apply_chat_template({{"user", "And now?"}}, true));
  EXPECT_EQ(second.prompt_tokens, int64_t(turn.size()) + (first.finish == Finish::stop ? 2 : 3));
  EXPECT_TRUE(std::equal(before.begin(), before.end(), after.begin()));
  EXPECT_EQ(chat.turns(), 2);

  // A fresh decoder given the whole conversation up to the second answer answers the same.
  std::vector<int32_t> prompt(before);
  prompt.insert(prompt.end(), turn.begin(), turn.end());
  EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), after.begin()));
  Decoder fresh(ctx(), m.layout, m.params, greedy());
  const auto again = model::generate(fresh, {prompt}, {12, {t.token_id(tok::kImEnd), t.token_id(tok::kEndOfText)}});
  EXPECT_EQ(int64_t(again.sequences[0].tokens.size()), second.new_tokens);
  EXPECT_TRUE(std::equal(again.sequences[0].tokens.begin(), again.sequences[0].tokens.end(), after.begin() + int64_t(prompt.size())));
  // The template: the system block first, each answer closed by <|im_end|> and a newline.
  const std::vector<int32_t> system = t.encode(tok::apply_chat_template({{"system", "You are terse."}}, false));
  EXPECT_TRUE(std::equal(system.begin(), system.end(), after.begin()));
  EXPECT_EQ(after[after.size() - 2], t.token_id(tok::kImEnd));
}

// Over the context, the oldest turns go (never the system prompt) and the user is told how many.
TEST(Chat, DropsOldestTurnsToFit) {
  const tok::Tokenizer t = tokenizer();
  const TinyModel m(4, config_for(t));
  Decoder d(ctx(), m.layout, m.params, greedy(96));
  ChatSession chat(d, t, {"Be kind.", 10});
  const std::vector<int32_t> system = t.encode(tok::apply_chat_template({{"system", "Be kind."}}, false));
  int64_t dropped = 0;
  for (int i = 0; i < 8; ++i) {
    const model::ChatReply r = chat.ask("message number " + std::to_string(i));
    dropped += r.dropped_turns;
    const std::vector<int32_t> all = chat.conversation();
    EXPECT_TRUE(std::equal(system.begin(), system.end(), all.begin())) << i;
    EXPECT_LE(int64_t(all.size()), 96 + 3) << i;  // an answer may end at the context, then gets closed
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(chat.turns(), 8);
  EXPECT_EQ(chat.turns() + dropped, 8);
  // A message that cannot fit even alone is refused, and the conversation stays as it was.
  const std::vector<int32_t> kept = chat.conversation();
  test::expect_error("leaves no room for an answer in the context of 96 tokens",
                     [&] { chat.ask(std::string(400, 'x') + " y z"); });
  EXPECT_EQ(chat.conversation(), kept);
  EXPECT_NO_THROW(chat.ask("still here?"));
}

TEST(Chat, CommandsAndBadInput) {
  const tok::Tokenizer t = tokenizer();
  const TinyModel m(5, config_for(t));
  Decoder d(ctx(), m.layout, m.params, greedy());
  ChatSession chat(d, t, {"", 4});
  test::expect_error("the message is empty", [&] { chat.ask(""); });
  test::expect_error("the message is empty", [&] { chat.ask(" \t "); });
  test::expect_error("the message is not valid UTF-8", [&] { chat.ask("caf\xc3"); });
  test::expect_error("the message is not valid UTF-8", [&] { chat.ask("\xff\xfe"); });
  EXPECT_EQ(chat.turns(), 0);
  chat.ask("hi");
  chat.ask("again");
  EXPECT_EQ(chat.turns(), 2);
  chat.reset();
  EXPECT_EQ(chat.turns(), 0);
  EXPECT_EQ(d.length(0), 0);
  chat.set_system_prompt("New rules.");
  EXPECT_EQ(chat.conversation(), t.encode(tok::apply_chat_template({{"system", "New rules."}}, false)));
  test::expect_error("the system prompt is not valid UTF-8", [&] { chat.set_system_prompt("\xc0"); });
  // A greedy answer after /reset equals the first answer of a fresh session.
  const std::string a = chat.ask("hi").text;
  ChatSession other(d, t, {"New rules.", 4});
  EXPECT_EQ(other.ask("hi").text, a);
}

// A random model sampled hot writes byte tokens that form no character; what reaches the user is still UTF-8,
// with U+FFFD in their place, in the text and in every streamed piece.
TEST(Chat, AnswersAreValidUtf8) {
  const tok::Tokenizer t = tokenizer();
  const TinyModel m(7, config_for(t));
  DecoderOptions o;
  o.sampling.temperature = 2;
  Decoder d(ctx(), m.layout, m.params, o);
  ChatSession chat(d, t, {"", 40});
  bool replaced = false;
  for (int i = 0; i < 4; ++i) {
    const model::ChatReply r = chat.ask("say something", [](std::string_view piece) {
      EXPECT_TRUE(tok::valid_utf8(piece)) << testing::PrintToString(std::string(piece));
    });
    EXPECT_TRUE(tok::valid_utf8(r.text));
    replaced = replaced || r.text.find("\xEF\xBF\xBD") != std::string::npos;
  }
  EXPECT_TRUE(replaced) << "no invalid bytes were sampled: the test proves nothing";
}

TEST(Chat, RefusesMismatchedTokenizerAndDecoder) {
  const tok::Tokenizer t = tokenizer();
  const TinyModel small;  // 300 tokens, fewer than the tokenizer's 722
  Decoder d(ctx(), small.layout, small.params, greedy());
  test::expect_error("the tokenizer has 722 tokens, more than the model's vocabulary of 300",
                     [&] { ChatSession chat(d, t, {}); });
  const TinyModel m(6, config_for(t));
  DecoderOptions two = greedy();
  two.batch = 2;
  Decoder batch(ctx(), m.layout, m.params, two);
  test::expect_error("the decoder must hold one sequence", [&] { ChatSession chat(batch, t, {}); });
  // Without ChatML's tokens (renamed here), there is no chat.
  tok::BpeModel plain = t.model();
  plain.special.clear();
  for (std::string& s : plain.vocab)
    if (s.starts_with("<|")) s = "[" + s + "]";
  Decoder one(ctx(), m.layout, m.params, greedy());
  test::expect_error("chat needs ChatML's special tokens", [&] { ChatSession chat(one, tok::Tokenizer(plain), {}); });
  test::expect_error("max_new_tokens must be at least 1", [&] { ChatSession chat(one, t, {"", 0}); });
}

}  // namespace
}  // namespace vkm
