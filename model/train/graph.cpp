#include "model/train/graph.hpp"

#include <cmath>
#include <cstring>
#include <optional>

#include "engine/error.hpp"
#include "engine/ops/cast.hpp"
#include "engine/ops/fill.hpp"

namespace vkm::train {

namespace {

template <class T>
T* host(const Tensor& t) {
  return reinterpret_cast<T*>(t.buffer->mapped() + t.offset);
}

template <class T>
void put(const Tensor& slot, const std::vector<T>& v) {
  if (v.size() * sizeof(T) != slot.bytes())
    throw Error("train: a batch of " + std::to_string(v.size()) + " values for a slot of " + slot.describe());
  std::memcpy(host<uint8_t>(slot), v.data(), slot.bytes());
}

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

}  // namespace

TrainGraph::TrainGraph(Context& ctx, const model::ParamLayout& layout, const GraphOptions& options)
    : ctx_(ctx), layout_(layout), o_(options) {
  const int batch = o_.batch, seq = o_.seq, accum = o_.accum;
  if (batch < 1 || seq < 1 || accum < 1)
    throw Error("train: --batch, --seq and --accum must be positive (" + std::to_string(batch) + ", " +
                std::to_string(seq) + ", " + std::to_string(accum) + ")");
  // The transformer checks the activations against the device's memory (and its 16-bit support) before
  // anything is allocated.
  transformer_ = std::make_unique<model::Transformer>(ctx, layout, batch, seq, o_.activations);

  const uint64_t align = std::max<uint64_t>(256, ctx.info().min_storage_offset_alignment);
  const uint64_t flat_bytes = round_up(uint64_t(layout.total_elems()) * 4, align);
  device_ = std::make_unique<Arena>(ctx, "parameters", MemoryKind::device, flat_bytes);
  buffers_ = model::allocate_params(*device_, layout, o_.with_optimizer, o_.activations);

  const uint64_t rows = uint64_t(batch) * uint64_t(seq);
  host_ = std::make_unique<Arena>(ctx, "step inputs", MemoryKind::host,
                                  uint64_t(accum) * 3 * round_up(rows * 4, align) + (uint64_t(accum) + 4) * align);
  for (int k = 0; k < accum; ++k) {
    ids_.push_back(host_->alloc(DType::i32, {batch, seq}));
    targets_.push_back(host_->alloc(DType::i32, {batch, seq}));
    mask_.push_back(host_->alloc(DType::f32, {batch, seq}));
  }
  losses_ = host_->alloc(DType::f32, {accum});
  stats_ = host_->alloc(DType::f32, {ops::kGradStatsElems});
  adam_step_ = host_->alloc(DType::f32, {ops::kAdamWStepElems});

  if (mixed()) {
    refresh_half_ = std::make_unique<Program>(ctx, "half weights");
    ops::cast(*refresh_half_, buffers_.values, buffers_.half);
  }
  const model::Transformer& tr = *transformer_;
  auto load_slot = [&](Program& p, int k) {
    p.copy(ids_[size_t(k)], tr.ids());
    p.copy(targets_[size_t(k)], tr.targets());
    p.copy(mask_[size_t(k)], tr.mask());
  };
  forward_ = std::make_unique<Program>(ctx, "forward");
  load_slot(*forward_, 0);
  tr.record(*forward_, buffers_.values, {}, buffers_.half);
  forward_->copy(tr.loss(), losses_.view(0, {1}));

  if (!o_.with_optimizer) return;
  norm_scratch_ = device_->alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx, layout.total_elems())});
  step_ = std::make_unique<Program>(ctx, "train step", o_.profile);
  Program& p = *step_;
  ops::fill(p, buffers_.grads, 0.0);
  for (int k = 0; k < accum; ++k) {
    load_slot(p, k);
    tr.record(p, buffers_.values, buffers_.grads, buffers_.half);
    p.copy(tr.loss(), losses_.view(k, {1}));
  }
  std::optional<ops::LossScaling> scaling;
  if (loss_scaled()) {
    loss_scale_ = host_->alloc(DType::f32, {ops::kLossScaleStateElems});
    scaling = ops::LossScaling{loss_scale_, tr.grad_scale(), accum};
  }
  ops::grad_norm(p, buffers_.grads, float(o_.clip), stats_, norm_scratch_, scaling ? &*scaling : nullptr);
  ops::adamw(p, o_.adamw, buffers_.values, buffers_.grads, buffers_.m, buffers_.v, adam_step_, stats_, buffers_.half);
  // Micro-batch means are averaged: each backward is scaled by 1/accum (and by the loss scale).
  if (loss_scaled()) set_loss_scale({});
  else ctx.write(tr.grad_scale(), std::vector<float>{1.0f / float(accum)});
}

void TrainGraph::upload(const std::vector<float>& params, const std::vector<float>& m, const std::vector<float>& v) {
  const size_t n = size_t(layout_.total_elems());
  if (params.size() != n)
    throw Error("train: " + std::to_string(params.size()) + " parameters for a layout of " + std::to_string(n));
  ctx_.write(buffers_.values, params);
  if (refresh_half_) ctx_.wait(ctx_.submit(*refresh_half_));
  if (!buffers_.m) return;
  const std::vector<float> zeros(m.empty() ? n : 0, 0.0f);
  ctx_.write(buffers_.m, m.empty() ? zeros : m);
  ctx_.write(buffers_.v, v.empty() ? zeros : v);
}

ops::LossScaleState TrainGraph::loss_scale() const {
  if (!loss_scale_) return {1, 0, 0};
  const float* s = host<float>(loss_scale_);
  return {s[0], s[1], s[2]};
}

void TrainGraph::set_loss_scale(const ops::LossScaleState& state) {
  if (!loss_scale_) return;
  float* s = host<float>(loss_scale_);
  s[0] = state.scale, s[1] = state.clean_steps, s[2] = state.skipped_steps;
  ctx_.write(transformer_->grad_scale(), std::vector<float>{state.scale / float(o_.accum)});
}

std::vector<float> TrainGraph::params() const { return ctx_.read<float>(buffers_.values); }
std::vector<float> TrainGraph::m() const { return ctx_.read<float>(buffers_.m); }
std::vector<float> TrainGraph::v() const { return ctx_.read<float>(buffers_.v); }

void TrainGraph::set_batch(int k, const data::Batch& b) {
  put(ids_.at(size_t(k)), b.inputs);
  put(targets_[size_t(k)], b.targets);
  put(mask_[size_t(k)], b.loss_mask);
}

void TrainGraph::submit_step(double lr, uint32_t t) {
  ops::write_adamw_step(adam_step_, {float(lr), t});
  ticket_ = ctx_.submit(*step_);
}

StepStats TrainGraph::finish_step() {
  ctx_.wait(ticket_);
  const float* losses = host<float>(losses_);
  double sum = 0;
  for (int k = 0; k < o_.accum; ++k) sum += losses[k];
  const auto* stats = host<ops::GradStats>(stats_);
  return {sum / o_.accum, stats->norm, stats->non_finite != 0.0f};
}

double TrainGraph::eval(const data::Batch& b) {
  set_batch(0, b);
  ctx_.wait(ctx_.submit(*forward_));
  return host<float>(losses_)[0];
}

}  // namespace vkm::train
