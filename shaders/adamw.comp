#version 450
// One AdamW step over n parameters, grid-stride, with PyTorch's torch.optim.AdamW arithmetic (decoupled
// weight decay, bias correction):
//   g  = grad * clip
//   p *= 1 - lr * weight_decay
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g * g
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// lr and t come from the step state, clip and the non-finite flag from grad_norm's stats, all read on the
// device, so one recorded program serves every step. When the flag is set nothing is written: the step is
// skipped. Parameters are the fp32 master copy; with HALF_COPY each updated value is also stored to a
// 16-bit copy (1: f16, 2: bf16), which the model computes with. Every binding starts at an aligned offset
// at or below its data: *_skip is the distance.
//! variant f32 -DHALF_COPY=0
//! variant f16 -DHALF_COPY=1
//! variant bf16 -DHALF_COPY=2
#if HALF_COPY
#include "types.glsl"
#endif
layout(local_size_x_id = 0) in;
layout(std430, binding = 0) buffer Params { float params[]; };
layout(std430, binding = 1) readonly buffer Grads { float grads[]; };
layout(std430, binding = 2) buffer M { float m[]; };
layout(std430, binding = 3) buffer V { float v[]; };
layout(std430, binding = 4) readonly buffer Step { uint step_state[]; };  // lr (fp32 bits), t
layout(std430, binding = 5) readonly buffer Stats { float stats[]; };     // norm, clip, non-finite
#if HALF_COPY == 1
layout(std430, binding = 6) writeonly buffer Half { float16_t half_params[]; };
#define STORE_HALF(x) f32_to_f16_exact(x)
#elif HALF_COPY == 2
layout(std430, binding = 6) writeonly buffer Half { uint16_t half_params[]; };
#define STORE_HALF(x) f32_to_bf16(x)
#endif
layout(push_constant) uniform Push {
  uint n, p_skip, g_skip, m_skip, v_skip, half_skip, step_skip, stats_skip;
  float beta1, beta2, eps, weight_decay;
};

// 1 - beta^t. Near 1, beta^t in fp32 is off by up to half an ulp of 1, which 1 - beta^t magnifies (beta2 =
// 0.999 at t = 1: a relative 6e-5), so for beta >= 0.5 it is computed as -expm1(t * log(1 - d)) with the
// exact d = 1 - beta, by series that converge fast there.
float one_minus_pow(float beta, uint t) {
  if (beta < 0.5) return 1.0 - pow(beta, float(t));  // beta^t <= 1/2: nothing cancels
  // log(1 - d) = -2 atanh(z), z = d / (2 - d) <= 1/3; ten odd powers reach below fp32's precision.
  float d = 1.0 - beta, z = d / (2.0 - d), power = z, atanh_z = 0.0;
  for (int k = 1; k < 20; k += 2) {
    atanh_z += power / float(k);
    power *= z * z;
  }
  float u = -2.0 * atanh_z * float(t);  // log(beta^t), <= 0
  if (u < -0.5) return 1.0 - exp(u);    // beta^t < 0.61: the subtraction loses little
  // -expm1(u) by Taylor series: |u|^13 / 13! is below fp32's precision.
  float term = u, sum = 0.0;
  for (int k = 2; k <= 13; ++k) {
    sum += term;
    term *= u / float(k);
  }
  return -sum;
}

void main() {
  if (stats[stats_skip + 2] != 0.0) return;
  const float lr = uintBitsToFloat(step_state[step_skip]), clip = stats[stats_skip + 1];
  const uint t = step_state[step_skip + 1];
  const float step_size = lr / one_minus_pow(beta1, t), root2 = sqrt(one_minus_pow(beta2, t));
  const float decay = 1.0 - lr * weight_decay;

  uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
  for (uint i = gl_GlobalInvocationID.x; i < n; i += stride) {
    float g = grads[g_skip + i] * clip;
    float mi = beta1 * m[m_skip + i] + (1.0 - beta1) * g;
    float vi = beta2 * v[v_skip + i] + (1.0 - beta2) * g * g;
    float p = params[p_skip + i] * decay;
    p -= step_size * mi / (sqrt(vi) / root2 + eps);
    m[m_skip + i] = mi;
    v[v_skip + i] = vi;
    params[p_skip + i] = p;
#if HALF_COPY
    half_params[half_skip + i] = STORE_HALF(p);
#endif
  }
}
