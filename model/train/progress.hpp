#pragma once
// The trainer's terminal output: a line every few steps with step/total, loss (and its recent average), lr,
// gradient norm, tokens/s and the time left, and a line for each validation.
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

namespace vkm::train {

struct ProgressLine {
  int64_t step = 0;
  double loss = 0, loss_avg = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0;  // over the last few steps
  double eta_s = 0;
  double loss_scale = 0;  // mixed precision: the loss scale and the steps skipped for overflow so far
  int64_t skipped = 0;
};

class Progress {
 public:
  Progress(int64_t total_steps, bool quiet);
  // Records a finished step of `tokens` tokens and returns what a progress line would show.
  ProgressLine step(int64_t step, double loss, double lr, double grad_norm, int64_t tokens);
  void print(const ProgressLine& line) const;
  void validation(int64_t step, double loss, double ppl) const;

  double seconds() const;  // since construction

 private:
  using Clock = std::chrono::steady_clock;
  struct Sample {
    Clock::time_point at;
    int64_t tokens;
    double loss;
  };
  int64_t total_;
  bool quiet_;
  Clock::time_point start_, last_;
  std::deque<Sample> window_;  // the last steps, for tokens/s and the loss average
};

// "1h02m", "12m30s", "45s".
std::string format_duration(double seconds);

}  // namespace vkm::train
