#include "model/generate/generate.hpp"

#include <algorithm>
#include <chrono>
#include <string>

#include "engine/error.hpp"

namespace vkm::model {

std::string_view finish_name(Finish f) {
  switch (f) {
    case Finish::stop: return "stop";
    case Finish::length: return "length";
    case Finish::context: return "context";
  }
  return "?";
}

GenerateResult generate(Decoder& decoder, const std::vector<std::vector<int32_t>>& prompts, const GenerateOptions& o,
                        const std::function<void(int64_t, int32_t)>& on_token) {
  if (o.max_new_tokens < 1)
    throw Error("generate: max_new_tokens must be at least 1, given " + std::to_string(o.max_new_tokens));
  using clock = std::chrono::steady_clock;
  const int64_t B = decoder.batch();
  GenerateResult r;
  r.sequences.resize(size_t(B));
  std::vector<bool> done(size_t(B), false);
  // Takes each running sequence's newly sampled token; says whether any sequence still runs.
  auto take = [&](const std::vector<int32_t>& next) {
    bool running = false;
    for (int64_t b = 0; b < B; ++b) {
      if (done[size_t(b)]) continue;
      Generated& g = r.sequences[size_t(b)];
      const int32_t id = next[size_t(b)];
      done[size_t(b)] = true;
      if (std::ranges::find(o.stop, id) != o.stop.end()) {
        g.finish = Finish::stop;
        continue;
      }
      g.tokens.push_back(id);
      if (on_token) on_token(b, id);
      // The next step would embed this token at position length(b), which must lie inside the cache.
      if (int64_t(g.tokens.size()) >= o.max_new_tokens)
        g.finish = Finish::length;
      else if (decoder.length(b) >= decoder.context())
        g.finish = Finish::context;
      else
        running = true, done[size_t(b)] = false;
    }
    return running;
  };
  const auto t0 = clock::now();
  bool running = take(decoder.prefill(prompts));
  const auto t1 = clock::now();
  for (; running; ++r.steps) running = take(decoder.step());
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace vkm::model
