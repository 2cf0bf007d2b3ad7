#include "model/train/progress.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace vkm::train {

namespace {
constexpr size_t kWindow = 20;  // steps averaged for tokens/s and the loss
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long long t = (long long)std::llround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%llds", t);
  return buf;
}

Progress::Progress(int64_t total_steps, bool quiet)
    : total_(total_steps), quiet_(quiet), start_(Clock::now()), last_(start_) {}

ProgressLine Progress::step(int64_t step, double loss, double lr, double grad_norm, int64_t tokens) {
  const Clock::time_point now = Clock::now();
  // The first sample of a window measures from the previous step's end (or the session's start).
  if (window_.empty()) window_.push_back({last_, 0, loss});
  window_.push_back({now, tokens, loss});
  if (window_.size() > kWindow + 1) window_.pop_front();
  last_ = now;

  ProgressLine l;
  l.step = step;
  l.loss = loss;
  l.lr = lr;
  l.grad_norm = grad_norm;
  int64_t toks = 0;
  double losses = 0;
  for (size_t i = 1; i < window_.size(); ++i) toks += window_[i].tokens, losses += window_[i].loss;
  const size_t n = window_.size() - 1;
  const double secs = std::chrono::duration<double>(now - window_.front().at).count();
  l.loss_avg = losses / double(n);
  l.tokens_per_s = secs > 0 ? double(toks) / secs : 0;
  l.eta_s = secs / double(n) * double(total_ - step);
  return l;
}

void Progress::print(const ProgressLine& l) const {
  if (quiet_) return;
  const int width = int(std::to_string(total_).size());
  std::printf("step %*lld/%lld  loss %.4f (avg %.4f)  lr %.2e  |g| %.3f  %.0f tok/s  elapsed %s  ETA %s", width,
              (long long)l.step, (long long)total_, l.loss, l.loss_avg, l.lr, l.grad_norm, l.tokens_per_s,
              format_duration(seconds()).c_str(), format_duration(l.eta_s).c_str());
  if (l.loss_scale > 0) std::printf("  scale %g (%lld skipped)", l.loss_scale, (long long)l.skipped);
  std::printf("\n");
  std::fflush(stdout);
}

void Progress::validation(int64_t step, double loss, double ppl) const {
  if (quiet_) return;
  std::printf("step %lld  validation loss %.4f  perplexity %.2f\n", (long long)step, loss, ppl);
  std::fflush(stdout);
}

double Progress::seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

}  // namespace vkm::train
