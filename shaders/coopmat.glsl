// Cooperative-matrix fragments for the tensor-core kernels, in one small vocabulary with two implementations:
// - VK_NV_cooperative_matrix (tensor cores): each fragment is spread over the 32 invocations of a subgroup.
// - COOP_EMULATE: plain GLSL that any device with 16-bit storage and fp16 arithmetic runs; each fragment is
//   spread over a group of 32 invocations, every invocation holding and computing its share (see below). It
//   has the same meaning as the real calls (a fragment is a value shared by its group; loads and stores
//   address memory alike), so on lavapipe in CI the kernels' staging, indexing, masking and write-out are
//   tested; the hardware's own fragment ops are not.
//
// The including shader declares the fragment shape LM x LN x LK first (specialization constants; the
// emulation supports 16 x 16 x 16 only, and the wrappers pass that) and runs 32 x (its subgroups)
// invocations. Every call must be reached by whole groups of 32 (subgroup-uniform control flow), as the
// extension demands.
//   COOP_A, COOP_B, COOP_ACC        LM x LK f16, LK x LN f16, LM x LN fp32 fragments
//   coop_zero()                     an accumulator of zeros
//   COOP_LOAD(frag, arr, at, stride, col_major)
//                                   fills frag from array arr (shared or buffer, of the fragment's element
//                                   type) from element `at`: element (r, c) is arr[at + r * stride + c], or
//                                   arr[at + c * stride + r] when col_major
//   coop_muladd(a, b, c)            a·b + c, fp32 sums of exact f16 products
//   COOP_STORE(acc, arr, at, stride) acc's element (r, c) to arr[at + r * stride + c] (row-major, fp32 array)
//   COOP_GROUP, COOP_LANE           the index of the invocation's group of 32 and its index within it
//   FRAG_LOOP                       the attribute of loops over fragments: unrolled on tensor cores (fragment
//                                   arrays must live in registers), rolled in emulation (lavapipe compiles it
//                                   2-4 times faster)
#ifndef COOPMAT_GLSL
#define COOPMAT_GLSL
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require

#if COOP_EMULATE
#define FRAG_LOOP [[dont_unroll]]
// Invocation l of a group owns the 2 x 4 block of a product at rows 2 * (l / 4), columns 4 * (l % 4): it holds
// that block of an accumulator, and what the block needs of the factors, those 2 rows of an A fragment and
// those 4 columns of a B fragment. A product then needs nothing from the other invocations, and no invocation
// holds or computes more than its share. (Whole fragments in every invocation took lavapipe half a minute to
// compile per matmul kernel.)
const uint COOP_SIZE = 16;                 // the one fragment shape the emulation has: 16 x 16 x 16
const uint COOP_ROWS = 2, COOP_COLS = 4;  // an invocation's block
struct COOP_A { float16_t e[COOP_ROWS * COOP_SIZE]; };  // e[r * 16 + k]: row r of the block
struct COOP_B { float16_t e[COOP_SIZE * COOP_COLS]; };  // e[k * 4 + c]: column c of the block
struct COOP_ACC { float e[COOP_ROWS * COOP_COLS]; };    // e[r * 4 + c]
#define COOP_GROUP (gl_LocalInvocationIndex / 32)
#define COOP_LANE (gl_LocalInvocationIndex % 32)

// Where element i of this invocation's share lies in the fragment, as (row, column); the fragment argument
// only picks the overload.
uvec2 coop_block() {
  const uint across = COOP_SIZE / COOP_COLS;  // blocks in a row of blocks
  return uvec2(COOP_LANE / across * COOP_ROWS, COOP_LANE % across * COOP_COLS);
}
uvec2 coop_place(COOP_A f, uint i) { return uvec2(coop_block().x + i / COOP_SIZE, i % COOP_SIZE); }
uvec2 coop_place(COOP_B f, uint i) { return uvec2(i / COOP_COLS, coop_block().y + i % COOP_COLS); }
uvec2 coop_place(COOP_ACC f, uint i) { return coop_block() + uvec2(i / COOP_COLS, i % COOP_COLS); }

COOP_ACC coop_zero() {
  COOP_ACC z;
  [[unroll]] for (uint i = 0; i < z.e.length(); ++i) z.e[i] = 0.0;
  return z;
}
// Loads and stores loop over the share without unrolling: lavapipe then compiles a matmul kernel in two thirds
// of the time, and runs it as fast.
#define COOP_LOAD(frag, arr, at, stride, col_major)                                                   \
  [[dont_unroll]] for (uint coop_i = 0; coop_i < (frag).e.length(); ++coop_i) {                       \
    uvec2 coop_rc = coop_place(frag, coop_i);                                                         \
    uint coop_at = (col_major) ? coop_rc.y * (stride) + coop_rc.x : coop_rc.x * (stride) + coop_rc.y; \
    (frag).e[coop_i] = arr[(at) + coop_at];                                                           \
  }
// Each element of the block summed in k order; f16 x f16 products are exact in fp32.
COOP_ACC coop_muladd(COOP_A a, COOP_B b, COOP_ACC c) {
  [[unroll]] for (uint i = 0; i < c.e.length(); ++i) {
    float s = c.e[i];
    [[unroll]] for (uint k = 0; k < COOP_SIZE; ++k)
      s += float(a.e[i / COOP_COLS * COOP_SIZE + k]) * float(b.e[k * COOP_COLS + i % COOP_COLS]);
    c.e[i] = s;
  }
  return c;
}
#define COOP_STORE(acc, arr, at, stride)                                       \
  [[dont_unroll]] for (uint coop_i = 0; coop_i < (acc).e.length(); ++coop_i) { \
    uvec2 coop_rc = coop_place(acc, coop_i);                                   \
    arr[(at) + coop_rc.x * (stride) + coop_rc.y] = (acc).e[coop_i];            \
  }
#else
// These make glslang write the Vulkan memory model: the device needs the vulkanMemoryModel feature.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#define FRAG_LOOP [[unroll]]
#define COOP_A fcoopmatNV<16, gl_ScopeSubgroup, LM, LK>
#define COOP_B fcoopmatNV<16, gl_ScopeSubgroup, LK, LN>
#define COOP_ACC fcoopmatNV<32, gl_ScopeSubgroup, LM, LN>
#define COOP_GROUP gl_SubgroupID
#define COOP_LANE gl_SubgroupInvocationID
#define coop_zero() COOP_ACC(0.0)
#define COOP_LOAD(frag, arr, at, stride, col_major) coopMatLoadNV(frag, arr, at, stride, col_major)
#define coop_muladd(a, b, c) coopMatMulAddNV(a, b, c)
#define COOP_STORE(acc, arr, at, stride) coopMatStoreNV(acc, arr, at, stride, false)
#endif
#endif  // COOPMAT_GLSL
