#version 450
// Cross-entropy over rows of V logits fused with its gradient, as a language model's classifier head (the
// idea of llm.c's fused classifier). For row r with target t and mask weight w:
//   loss_r    = logsumexp(x_r) - x_r[t]
//   dlogits_r = (softmax(x_r) - onehot(t)) * w * grad_scale / count, written over x_r
//   loss      = sum_r w * loss_r / count, where count = the sum of the weights (0 when nothing counts)
// A row whose target lies outside [0, V) is ignored like a masked row (weight 0: zero gradient, no loss,
// not counted), so a target is never used as an index unless it is in range; -100 ("ignore") works too.
// Three passes, one variant each:
//   count: one workgroup sums the weights into scratch[0];
//   rows:  one workgroup per row (rows loop by the grid). One read of the row keeps a running max and sum
//          of exponentials per invocation, a fixed-order tree merges them, and a second read writes the
//          gradient in place; w * loss_r goes to scratch[1 + r]. Masked rows are only zeroed, never read;
//   mean:  one workgroup adds the row losses in index order, with compensation, and divides by count.
// Nothing is added atomically, so results are bit-identical run to run. The workgroup size must be a
// power of two. Every binding starts at an aligned offset at or below its data: *_skip is the distance.
// Logits are f32, f16 or bf16 (ACT_TYPE, storage.glsl); a 16-bit gradient is rounded once, on its store.
//! variant count -DPASS_COUNT
//! variant rows -DPASS_ROWS -DACT_TYPE=0
//! variant rows_f16 -DPASS_ROWS -DACT_TYPE=1
//! variant rows_bf16 -DPASS_ROWS -DACT_TYPE=2
//! variant mean -DPASS_MEAN
layout(local_size_x_id = 0) in;
const uint N = gl_WorkGroupSize.x;

#if defined(PASS_ROWS)

#include "storage.glsl"

layout(std430, binding = 0) buffer Logits { ACT logits[]; };
layout(std430, binding = 1) readonly buffer Targets { int targets[]; };
layout(std430, binding = 2) readonly buffer Mask { float mask[]; };
layout(std430, binding = 3) readonly buffer Scale { float grad_scale[]; };
layout(std430, binding = 4) buffer Scratch { float scratch[]; };
// One piece of rows: logits holds rows row0 .. row0 + rows - 1 of targets, mask and the row losses.
layout(push_constant) uniform Push {
  uint rows, vocab, row0, logit_skip, target_skip, mask_skip, scale_skip, scratch_skip;
};

shared float tree_max[N];
shared float tree_sum[N];

void main() {
  const uint t = gl_LocalInvocationID.x;
  for (uint r = gl_WorkGroupID.x; r < rows; r += gl_NumWorkGroups.x) {
    const uint row = row0 + r, base = logit_skip + r * vocab;
    const int target = targets[target_skip + row];
    const bool valid = target >= 0 && target < int(vocab);
    const float w = valid ? mask[mask_skip + row] : 0.0;
    if (w == 0.0) {  // the same for the whole workgroup, so no invocation skips a barrier alone
      for (uint i = t; i < vocab; i += N) logits[base + i] = STORE(0.0);
      if (t == 0) scratch[scratch_skip + 1 + row] = 0.0;
      continue;
    }

    // Online softmax: m is the largest logit seen, s the sum of exp(x - m). A NaN logit makes s NaN.
    float m = -3.402823466e38, s = 0.0;
    for (uint i = t; i < vocab; i += N) {
      float x = LOAD(logits[base + i]);
      if (x > m) {
        s = s * exp(m - x) + 1.0;
        m = x;
      } else {
        s += exp(x - m);
      }
    }
    // Read before the barriers below, after which other invocations overwrite the row.
    const float x_target = t == 0 ? LOAD(logits[base + uint(target)]) : 0.0;

    tree_max[t] = m;
    tree_sum[t] = s;
    barrier();
    for (uint h = N / 2; h > 0; h /= 2) {
      if (t < h) {
        float m2 = tree_max[t + h], top = max(m, m2);
        s = s * exp(m - top) + tree_sum[t + h] * exp(m2 - top);
        m = top;
        tree_max[t] = m;
        tree_sum[t] = s;
      }
      barrier();
    }
    m = tree_max[0];
    s = tree_sum[0];
    barrier();  // everyone has read the merged pair before the next row overwrites it

    if (t == 0) scratch[scratch_skip + 1 + row] = w * (m + log(s) - x_target);
    const float factor = w * grad_scale[scale_skip] / scratch[scratch_skip];
    const float inv_s = 1.0 / s;
    for (uint i = t; i < vocab; i += N) {
      float prob = exp(LOAD(logits[base + i]) - m) * inv_s;
      logits[base + i] = STORE((i == uint(target) ? prob - 1.0 : prob) * factor);
    }
  }
}

#else  // PASS_COUNT, PASS_MEAN: one workgroup

shared float tree[N];

// The workgroup's sum of v, in a fixed order; every invocation gets it.
float workgroup_sum(float v) {
  const uint t = gl_LocalInvocationID.x;
  tree[t] = v;
  barrier();
  for (uint h = N / 2; h > 0; h /= 2) {
    if (t < h) tree[t] += tree[t + h];
    barrier();
  }
  return tree[0];
}

#if defined(PASS_COUNT)
layout(std430, binding = 0) readonly buffer Targets { int targets[]; };
layout(std430, binding = 1) readonly buffer Mask { float mask[]; };
layout(std430, binding = 2) writeonly buffer Scratch { float scratch[]; };
layout(push_constant) uniform Push { uint rows, vocab, target_skip, mask_skip, scratch_skip; };

void main() {
  // Weights are 0 and 1 in practice, and such sums are exact in fp32 up to 2^24 rows.
  float sum = 0.0;
  for (uint r = gl_LocalInvocationID.x; r < rows; r += N) {
    int target = targets[target_skip + r];
    if (target >= 0 && target < int(vocab)) sum += mask[mask_skip + r];
  }
  sum = workgroup_sum(sum);
  if (gl_LocalInvocationID.x == 0) scratch[scratch_skip] = sum;
}

#else  // PASS_MEAN
layout(std430, binding = 0) readonly buffer Scratch { float scratch[]; };
layout(std430, binding = 1) writeonly buffer Loss { float loss[]; };
layout(push_constant) uniform Push { uint rows, scratch_skip, loss_skip; };

void main() {
  // `precise` keeps the compiler from simplifying the compensation away.
  precise float sum = 0.0;
  precise float lost = 0.0;  // the rounding error of the last addition, taken back from the next term
  for (uint r = gl_LocalInvocationID.x; r < rows; r += N) {
    precise float y = scratch[scratch_skip + 1 + r] - lost;
    precise float next = sum + y;
    lost = (next - sum) - y;
    sum = next;
  }
  float total = workgroup_sum(sum - lost);
  float count = scratch[scratch_skip];
  if (gl_LocalInvocationID.x == 0) loss[loss_skip] = count != 0.0 ? total / count : 0.0;
}
#endif

#endif
