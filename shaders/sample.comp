#version 450
// Picks each sequence's next token from its logits on the device, as Hugging Face's generate() does with a
// repetition penalty, temperature, top-k and top-p, then multinomial sampling (or argmax when greedy):
//   z_i = logit_i, divided by `penalty` where positive and multiplied by it where negative if token i was
//         seen (marked in `seen`: the prompt and every token sampled so far), then divided by `temperature`;
//   top-k keeps the tokens whose z is at least the k-th largest (ties included); top-p then keeps the fewest
//   largest whose probabilities, renormalized over what top-k kept, sum to at least p (ties included);
//   the draw: the first kept token, in vocabulary order, whose running sum of exp(z - max z) exceeds u times
//   the kept total, u in [0, 1) a hash of the sequence's seed and the position being sampled, which the
//   CPU reproduces (tests/reference/sample.cpp).
// Greedy (temperature 0): the largest z, the smallest id among equals.
// One workgroup per sequence. Thread i owns the contiguous slice [i·per, (i+1)·per) of the vocabulary, so a
// sum over its slice and then over the slices in a fixed tree order is the same every run. The top-k and
// top-p thresholds are found without sorting, by bisection over an order-preserving integer key of z: 32
// rounds, each one pass over the logits, each keeping the largest key whose count (or mass) of tokens at or
// above it reaches the target. Then tokens[b] = the choice, its bit is set in seen, positions[b] += 1.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;  // a power of two

layout(std430, binding = 0) readonly buffer Logits { float logits[]; };  // [B, V]
layout(std430, binding = 1) buffer Seen { uint seen[]; };                // [B, words]: bit i of the row is token i
layout(std430, binding = 2) readonly buffer Seeds { uint seeds[]; };     // [B]
layout(std430, binding = 3) buffer Positions { int positions[]; };       // [B]: the position of the last token
layout(std430, binding = 4) writeonly buffer Tokens { int tokens[]; };   // [B]
layout(push_constant) uniform Push {
  uint V, words;
  uint greedy;       // 1: argmax, and temperature, top_k, top_p are not used
  uint top_k;        // 0 or >= V: off
  float temperature;
  float top_p;       // 1: off
  float penalty;     // 1: off
  uint skip[5];      // by binding
};

shared float partial[WG];
shared uint partial_id[WG];
shared uint pick;

uint b, first, last;  // this workgroup's sequence and the thread's slice [first, last)

float processed(uint i) {
  float z = logits[skip[0] + b * V + i];
  if (penalty != 1.0 && (seen[skip[1] + b * words + i / 32] & (1u << (i % 32))) != 0u)
    z = z < 0.0 ? z * penalty : z / penalty;
  return greedy != 0 ? z : z / temperature;
}

// Orders as the floats do (negative below positive); -0 just below +0.
uint key(float z) {
  uint u = floatBitsToUint(z);
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// The sum of every thread's v, added in a fixed tree order.
float workgroup_sum(float v) {
  const uint tid = gl_LocalInvocationID.x;
  partial[tid] = v;
  barrier();
  [[dont_unroll]] for (uint s = WG / 2; s > 0; s /= 2) {
    if (tid < s) partial[tid] += partial[tid + s];
    barrier();
  }
  float total = partial[0];
  barrier();
  return total;
}

float largest_z() {
  float m = uintBitsToFloat(0xff800000u);  // -infinity
  for (uint i = first; i < last; ++i) m = max(m, processed(i));
  const uint tid = gl_LocalInvocationID.x;
  partial[tid] = m;
  barrier();
  [[dont_unroll]] for (uint s = WG / 2; s > 0; s /= 2) {
    if (tid < s) partial[tid] = max(partial[tid], partial[tid + s]);
    barrier();
  }
  m = partial[0];
  barrier();
  return m;
}

// Over the thread's slice: the number (or, by_mass, the sum of exp(z - zmax)) of tokens with key >= at_least.
float slice_sum(bool by_mass, uint at_least, float zmax) {
  float f = 0.0;
  for (uint i = first; i < last; ++i) {
    const float z = processed(i);
    if (key(z) >= at_least) f += by_mass ? exp(z - zmax) : 1.0;
  }
  return f;
}

// The largest key t such that the tokens with key >= max(t, floor_key) number (by_mass: weigh) at least target.
uint bisect(bool by_mass, float target, uint floor_key, float zmax) {
  uint t = 0u;
  [[dont_unroll]] for (int bit = 31; bit >= 0; --bit) {
    const uint candidate = t | (1u << bit);
    if (workgroup_sum(slice_sum(by_mass, max(candidate, floor_key), zmax)) >= target) t = candidate;
  }
  return t;
}

uint mix32(uint x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
float uniform01(uint seed, uint position) {
  return float(mix32(seed ^ mix32(position + 0x9e3779b9u)) >> 8) * (1.0 / 16777216.0);
}

void argmax() {
  const uint tid = gl_LocalInvocationID.x;
  float best = uintBitsToFloat(0xff800000u);
  uint id = first < V ? first : V - 1;
  for (uint i = first; i < last; ++i) {
    const float z = processed(i);
    if (z > best) best = z, id = i;
  }
  partial[tid] = best;
  partial_id[tid] = id;
  barrier();
  [[dont_unroll]] for (uint s = WG / 2; s > 0; s /= 2) {
    // The right half's slices come later in the vocabulary: it wins only when strictly larger.
    if (tid < s && partial[tid + s] > partial[tid]) {
      partial[tid] = partial[tid + s];
      partial_id[tid] = partial_id[tid + s];
    }
    barrier();
  }
  if (tid == 0) pick = partial_id[0];
}

void draw() {
  const uint tid = gl_LocalInvocationID.x;
  const float zmax = largest_z();
  uint threshold = 0u;
  if (top_k > 0 && top_k < V) threshold = bisect(false, float(top_k), 0u, zmax);
  if (top_p < 1.0) threshold = bisect(true, top_p * workgroup_sum(slice_sum(true, threshold, zmax)), threshold, zmax);
  partial[tid] = slice_sum(true, threshold, zmax);
  barrier();
  // Thread 0 finds the slice where u times the total falls, and how far into it; when rounding leaves u times
  // the total past the end, the last kept token is taken.
  if (tid == 0) {
    float total = 0.0;
    for (uint j = 0; j < WG; ++j) total += partial[j];
    const float target = uniform01(seeds[skip[2] + b], uint(positions[skip[3] + b] + 1)) * total;
    float before = 0.0, rest = uintBitsToFloat(0x7f800000u);  // infinity
    uint slice = 0;
    for (uint j = 0; j < WG; ++j) {
      if (partial[j] == 0.0) continue;
      slice = j;
      if (target < before + partial[j]) {
        rest = target - before;
        break;
      }
      before += partial[j];
    }
    partial_id[0] = slice;
    partial[WG - 1] = rest;  // read below by one thread, after the barrier
  }
  barrier();
  if (tid == partial_id[0]) {
    const float rest = partial[WG - 1];
    float run = 0.0;
    uint choice = first;
    for (uint i = first; i < last; ++i) {
      const float z = processed(i);
      if (key(z) < threshold) continue;
      choice = i;
      run += exp(z - zmax);
      if (rest < run) break;
    }
    pick = choice;
  }
}

void main() {
  b = gl_WorkGroupID.x;
  const uint per = (V + WG - 1) / WG;
  first = min(gl_LocalInvocationID.x * per, V);
  last = min(first + per, V);
  if (greedy != 0)
    argmax();
  else
    draw();
  barrier();
  if (gl_LocalInvocationID.x == 0) {
    tokens[skip[4] + b] = int(pick);
    seen[skip[1] + b * words + pick / 32] |= 1u << (pick % 32);
    positions[skip[3] + b] += 1;
  }
}
