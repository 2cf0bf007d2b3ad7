#pragma once
// The device side of training and evaluation: flat parameter buffers, the transformer's activations,
// host-visible slots for the inputs of each micro-batch, and the two programs (a whole optimizer step; a
// forward pass for validation), each recorded once and resubmitted.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "engine/ops/adamw.hpp"
#include "engine/ops/grad_norm.hpp"
#include "engine/program.hpp"
#include "model/data/batcher.hpp"
#include "model/params.hpp"
#include "model/transformer.hpp"

namespace vkm::train {

struct StepStats {
  double loss;        // mean over the micro-batches of their mean token loss
  double grad_norm;   // before clipping (of the unscaled gradients)
  bool non_finite;    // the gradients held an inf or NaN: AdamW skipped the step on the device
};

struct GraphOptions {
  int batch = 1, seq = 1, accum = 1;  // accum micro-batches of [batch, seq] per step
  bool with_optimizer = true;         // false: only the forward program (evaluation)
  ops::AdamWConfig adamw;
  double clip = 1.0;
  // f32, or f16 / bf16 for mixed precision: 16-bit activations and weight copy, fp32 master weights and
  // moments; with f16 also a loss scale kept and updated on the device (ops::grad_norm's LossScaling).
  DType activations = DType::f32;
  bool profile = false;  // the step program times each command (and runs them one at a time): step_timings()
};

class TrainGraph {
 public:
  TrainGraph(Context& ctx, const model::ParamLayout& layout, const GraphOptions& options);

  // Writes the fp32 parameters (and their 16-bit copy) and Adam's moments (zeros when empty).
  void upload(const std::vector<float>& params, const std::vector<float>& m = {}, const std::vector<float>& v = {});
  std::vector<float> params() const;
  std::vector<float> m() const;
  std::vector<float> v() const;
  // fp16: the loss scale's state (ops::LossScaleState), read after a step (the scale the next step uses) and
  // written to resume; {1, 0, 0} without loss scaling.
  ops::LossScaleState loss_scale() const;
  void set_loss_scale(const ops::LossScaleState& state);
  bool mixed() const { return o_.activations != DType::f32; }
  bool loss_scaled() const { return o_.activations == DType::f16; }

  // Writes micro-batch k's inputs into its host slot; no program that reads the slot may be running.
  void set_batch(int k, const data::Batch& b);
  // Starts the optimizer step over the batches in the slots with this learning rate and step number (1-based).
  void submit_step(double lr, uint32_t t);
  // Waits for the step and reads its loss and gradient statistics.
  StepStats finish_step();
  // The mean token loss of slot 0's batch under the current parameters (waits).
  double eval(const data::Batch& b);

  // GPU time of each command of the last step (profiling only).
  std::vector<DispatchTiming> step_timings() { return step_->timings(); }

  int64_t tokens_per_step() const { return int64_t(o_.batch) * o_.seq * o_.accum; }

 private:
  Context& ctx_;
  const model::ParamLayout& layout_;
  GraphOptions o_;
  std::unique_ptr<Arena> device_, host_;
  model::ParamBuffers buffers_;
  std::unique_ptr<model::Transformer> transformer_;
  std::vector<Tensor> ids_, targets_, mask_;  // host slots, one per micro-batch
  Tensor losses_, stats_, adam_step_, norm_scratch_, loss_scale_;
  std::unique_ptr<Program> step_, forward_, refresh_half_;
  uint64_t ticket_ = 0;
};

}  // namespace vkm::train
