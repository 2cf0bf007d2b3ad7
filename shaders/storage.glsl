// The storage of a kernel's activations, picked by ACT_TYPE: 0 f32, 1 f16, 2 bf16 (16-bit patterns). ACT is
// the stored type, LOAD(v) widens a stored value to fp32 and STORE(f) rounds an fp32 to it (nearest even, in
// integer arithmetic), so one kernel body serves all three storages with fp32 arithmetic. Only the 16-bit
// storages include types.glsl and its device needs; bf16 is converted with shifts and needs no fp16 arithmetic.
#if !defined(ACT_TYPE) || ACT_TYPE == 0
#define ACT float
#define LOAD(v) (v)
#define STORE(f) (f)
#elif ACT_TYPE == 1
#include "types.glsl"
#define ACT float16_t
#define LOAD(v) f16_to_f32_exact(v)
#define STORE(f) f32_to_f16_exact(f)
#elif ACT_TYPE == 2
#define NO_FLOAT16 1
#include "types.glsl"
#define ACT uint16_t
#define LOAD(v) bf16_to_f32(v)
#define STORE(f) f32_to_bf16(f)
#else
#error ACT_TYPE must be 0 (f32), 1 (f16) or 2 (bf16)
#endif
