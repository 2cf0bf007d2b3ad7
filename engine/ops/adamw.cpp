#include "engine/ops/adamw.hpp"

#include <cstring>

#include "engine/memory.hpp"
#include "engine/ops/common.hpp"
#include "engine/ops/grad_norm.hpp"

namespace vkm::ops {

void write_adamw_step(const Tensor& state, AdamWStep step) {
  if (!state || dtype_size(state.dtype) != 4 || state.numel() != kAdamWStepElems)
    throw Error("write_adamw_step: the state must be two 4-byte elements, given " + state.describe());
  if (!state.buffer->mapped() || !state.buffer->coherent())
    throw Error("write_adamw_step: " + state.describe() + " is not in memory the host maps coherently; allocate it "
                "from a MemoryKind::host arena");
  static_assert(sizeof(AdamWStep) == 8);
  std::memcpy(state.buffer->mapped() + state.offset, &step, sizeof step);
}

void adamw(Program& p, const AdamWConfig& c, const Tensor& params, const Tensor& grads, const Tensor& m,
           const Tensor& v, const Tensor& step_state, const Tensor& grad_stats, const Tensor& params_half) {
  auto fail = [&](const std::string& why) {
    throw Error("adamw: " + why + " (params " + params.describe() + ", grads " + grads.describe() + ", m " +
                m.describe() + ", v " + v.describe() + ", step_state " + step_state.describe() + ", grad_stats " +
                grad_stats.describe() + (params_half ? ", params_half " + params_half.describe() : "") + ")");
  };
  for (const Tensor* t : {&params, &grads, &m, &v, &step_state, &grad_stats})
    if (!*t) fail("a tensor is not allocated");
  const int64_t n = params.numel();
  for (const Tensor* t : {&params, &grads, &m, &v})
    if (t->dtype != DType::f32 || t->numel() != n) fail("params, grads, m and v must be f32 of equal element count");
  if (n == 0) fail("no parameters");
  if ((step_state.dtype != DType::f32 && step_state.dtype != DType::u32) || step_state.numel() != kAdamWStepElems)
    fail("step_state must be f32 or u32 with " + std::to_string(kAdamWStepElems) + " elements");
  if (grad_stats.dtype != DType::f32 || grad_stats.numel() != kGradStatsElems)
    fail("grad_stats must be f32 with " + std::to_string(kGradStatsElems) + " elements (grad_norm's stats)");
  if (params_half && ((params_half.dtype != DType::f16 && params_half.dtype != DType::bf16) || params_half.numel() != n))
    fail("params_half must be f16 or bf16 with as many elements as params");
  // The written tensors first: none may overlap any other tensor.
  std::vector<const Tensor*> all = {&params, &m, &v, &grads, &step_state, &grad_stats};
  size_t written = 3;
  if (params_half) all.insert(all.begin() + written++, &params_half);
  for (size_t i = 0; i < written; ++i)
    for (size_t j = 0; j < all.size(); ++j)
      if (i != j && all[i]->overlaps(*all[j])) fail(all[i]->describe() + " overlaps " + all[j]->describe());

  Context& ctx = p.context();
  if (params_half) require_16bit(ctx, "adamw with a 16-bit parameter copy");
  struct Push {
    uint32_t n, p_skip, g_skip, m_skip, v_skip, half_skip, step_skip, stats_skip;
    float beta1, beta2, eps, weight_decay;
  };
  const char* variant = !params_half ? "adamw.f32" : params_half.dtype == DType::f16 ? "adamw.f16" : "adamw.bf16";
  const Kernel& k = ctx.kernel({variant, params_half ? 7u : 6u, sizeof(Push), {kGroupSize}});
  auto [step, step_skip] = aligned_span(ctx, step_state, 0, kAdamWStepElems);
  auto [stats, stats_skip] = aligned_span(ctx, grad_stats, 0, kGradStatsElems);
  for_each_piece(ctx, n, 4, [&](int64_t start, int64_t count) {
    auto [ps, p_skip] = aligned_span(ctx, params, start, count);
    auto [gs, g_skip] = aligned_span(ctx, grads, start, count);
    auto [ms, m_skip] = aligned_span(ctx, m, start, count);
    auto [vs, v_skip] = aligned_span(ctx, v, start, count);
    std::vector<Binding> bindings = {inout(ps), in(gs), inout(ms), inout(vs), in(step), in(stats)};
    uint32_t half_skip = 0;
    if (params_half) {
      auto [hs, skip] = aligned_span(ctx, params_half, start, count);
      bindings.push_back(out(hs));
      half_skip = skip;
    }
    const Push push{uint32_t(count), p_skip,  g_skip,  m_skip, v_skip, half_skip, step_skip, stats_skip,
                    c.beta1,         c.beta2, c.eps,   c.weight_decay};
    p.dispatch(k, std::move(bindings), push, stride_groups(count));
  });
}

}  // namespace vkm::ops
