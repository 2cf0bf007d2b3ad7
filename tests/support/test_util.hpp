#pragma once
// Helpers every suite shares: one device context per test process, seeded inputs, NaN poisoning, host
// values in and out of float tensors, the run-twice determinism check, error checks, and the relative L2
// error the tolerances are stated in.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/context.hpp"
#include "engine/program.hpp"
#include "tests/reference/cast.hpp"

namespace vkm {

// Prints a DType by name in test parameters and messages (in vkm, so gtest finds it by argument lookup).
void PrintTo(DType t, std::ostream* os);

}  // namespace vkm

namespace vkm::test {

// The process-wide context (device chosen as vkmind would: VKMIND_DEVICE or the best one).
Context& ctx();

// A DeviceInfo made by hand as NVIDIA's driver describes a GPU with tensor cores (VK_NV_cooperative_matrix with
// 16x8x16 and 16x16x16 f16 shapes, subgroups of 32, 48 KiB of shared memory): for tests of the path choices.
DeviceInfo tensor_core_gpu();

// Seeded uniform values in [lo, hi), none of them zero.
std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f);

// ‖got − want‖ / ‖want‖ (‖got − want‖ alone when want is zero), over the places where want is finite;
// infinity if got holds a NaN or infinity that want does not have at that place. Signs of zero are not
// compared: where they matter (casts), compare bits.
double rel_l2(const std::vector<double>& got, const std::vector<double>& want);
template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// The values a tensor of float dtype t holds after storing v: each rounded to t (nearest even).
ref::Vec stored(const std::vector<float>& v, DType t);

// Writes v into a tensor of float dtype (f32, f16 or bf16), each value rounded once to that dtype: floats
// as the engine's host conversions round them, doubles as the reference does.
void write_values(const Tensor& t, const std::vector<float>& v);
void write_values(const Tensor& t, const ref::Vec& v);
// The values a tensor of float dtype holds.
ref::Vec read_values(const Tensor& t);

// Fills the tensor's bytes with 0xFF (a NaN in every float type) so unwritten outputs show.
void poison(const Tensor& t);

// Builds a program from `record`, runs it once and waits.
template <class F>
void run(F&& record, const char* name = "test") {
  Program p(ctx(), name);
  record(p);
  ctx().wait(ctx().submit(p));
}

// The determinism check: twice, poisons `outputs`, calls `prepare` (if given: writes the inputs, and the
// outputs that start with contents) and then `execute` (typically submits one program recorded beforehand);
// each output must hold the same bytes after both runs. Returns the outputs' bytes after the first run.
std::vector<std::vector<uint8_t>> run_twice_bytes(const std::vector<Tensor>& outputs,
                                                  const std::function<void()>& prepare,
                                                  const std::function<void()>& execute);
// The same with a program recorded afresh by `record` each run; returns the (float) outputs' values.
std::vector<ref::Vec> run_twice(const std::vector<Tensor>& outputs, const std::function<void()>& prepare,
                                const std::function<void(Program&)>& record);

// Expects `call` to throw vkm::Error with `text` in its message (for errors that name the offending tensor).
void expect_error(const std::string& text, const std::function<void()>& call);

// The committed test data (tests/data).
std::filesystem::path data_dir();

// A fresh folder for the current test, removed with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path;
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path write(const std::string& name, const std::string& text) const;  // a file in it
};

}  // namespace vkm::test
