#include "tests/support/test_util.hpp"

#include <cstring>
#include <fstream>
#include <unistd.h>

#include "engine/error.hpp"
#include "engine/instance.hpp"

namespace vkm {

void PrintTo(DType t, std::ostream* os) { *os << dtype_name(t); }

}  // namespace vkm

namespace vkm::test {

DeviceInfo tensor_core_gpu() {
  DeviceInfo d;
  d.name = "hand-made GPU";
  d.vk_type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
  d.shader_float16 = d.shader_int16 = d.storage_16bit = d.vulkan_memory_model = true;
  d.subgroup_size = d.min_subgroup_size = d.max_subgroup_size = 32;
  d.subgroup_ops = {"basic", "vote", "ballot"};
  d.subgroup_in_compute = true;
  d.max_shared_memory = 48 << 10;
  d.max_workgroup_invocations = 1024;
  d.max_workgroup_size[0] = 1024;
  d.nv_cooperative_matrix = true;
  d.nv_coop_shapes = {{16, 8, 16, "f16", "f16", "f16", "f16", "subgroup"},
                      {16, 8, 16, "f16", "f16", "f32", "f32", "subgroup"},
                      {16, 16, 16, "f16", "f16", "f32", "f32", "subgroup"},
                      {8, 8, 32, "i8", "i8", "i32", "i32", "subgroup"}};
  return d;
}

Context& ctx() {
  static Context c;
  return c;
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) {
    do x = dist(rng);
    while (x == 0.0f);
  }
  return v;
}

double rel_l2(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    if (!std::isfinite(got[i]) && got[i] != want[i]) return std::numeric_limits<double>::infinity();
    if (std::isfinite(want[i])) {
      num += (got[i] - want[i]) * (got[i] - want[i]);
      den += want[i] * want[i];
    }
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

ref::Vec stored(const std::vector<float>& v, DType t) { return ref::cast(to_double(v), t); }

void write_values(const Tensor& t, const std::vector<float>& v) {
  if (t.dtype == DType::f32) return ctx().write(t, v);
  if (t.dtype != DType::f16 && t.dtype != DType::bf16) throw Error("write_values: not a float tensor: " + t.describe());
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = t.dtype == DType::f16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
  ctx().write(t, h);
}

void write_values(const Tensor& t, const ref::Vec& v) { ctx().write(t, ref::store(v, t.dtype)); }

ref::Vec read_values(const Tensor& t) { return ref::load(ctx().read<uint8_t>(t), t.dtype); }

void poison(const Tensor& t) {
  std::vector<uint8_t> bytes(t.bytes(), 0xff);
  ctx().write(t, bytes.data(), bytes.size());
}

std::vector<std::vector<uint8_t>> run_twice_bytes(const std::vector<Tensor>& outputs,
                                                  const std::function<void()>& prepare,
                                                  const std::function<void()>& execute) {
  std::vector<std::vector<uint8_t>> bytes[2];
  for (auto& b : bytes) {
    for (const Tensor& t : outputs) poison(t);
    if (prepare) prepare();
    execute();
    for (const Tensor& t : outputs) b.push_back(ctx().read<uint8_t>(t));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::vector<uint8_t>& first = bytes[0][i];
    const std::vector<uint8_t>& second = bytes[1][i];
    if (first == second) continue;
    size_t at = 0;
    while (at < first.size() && first[at] == second[at]) ++at;
    ADD_FAILURE() << "output " << i << " (" << outputs[i].describe() << "): two runs gave different bits, from byte "
                  << at;
  }
  return std::move(bytes[0]);
}

std::vector<ref::Vec> run_twice(const std::vector<Tensor>& outputs, const std::function<void()>& prepare,
                                const std::function<void(Program&)>& record) {
  const std::vector<std::vector<uint8_t>> bytes = run_twice_bytes(outputs, prepare, [&] { test::run(record); });
  std::vector<ref::Vec> values;
  for (size_t i = 0; i < outputs.size(); ++i) values.push_back(ref::load(bytes[i], outputs[i].dtype));
  return values;
}

void expect_error(const std::string& text, const std::function<void()>& call) {
  try {
    call();
    ADD_FAILURE() << "accepted; want an error naming " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << "want " << text << " in: " << e.what();
  }
}

namespace {

// Fails the running test if the validation layer reported anything during it.
class ValidationListener : public testing::EmptyTestEventListener {
  uint64_t before_ = 0;
  void OnTestStart(const testing::TestInfo&) override { before_ = Instance::validation_messages(); }
  void OnTestEnd(const testing::TestInfo&) override {
    uint64_t n = Instance::validation_messages() - before_;
    if (n) ADD_FAILURE() << n << " Vulkan validation message(s) during this test (printed above)";
  }
};

}  // namespace
std::filesystem::path data_dir() { return std::filesystem::path(__FILE__).parent_path().parent_path() / "data"; }

TempDir::TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test = info ? std::string(info->test_suite_name()) + "_" + info->name() : "suite";
  std::string name = "vkm_test_" + std::to_string(::getpid()) + "_" + test;
  for (char& ch : name)
    if (ch == '/') ch = '_';
  path = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
}

TempDir::~TempDir() { std::filesystem::remove_all(path); }

std::filesystem::path TempDir::write(const std::string& name, const std::string& text) const {
  std::ofstream(path / name, std::ios::binary) << text;
  return path / name;
}

}  // namespace vkm::test

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new vkm::test::ValidationListener);
  std::printf("device: %s (validation %s)\n", vkm::test::ctx().info().name.c_str(),
              vkm::test::ctx().validation() ? "on" : "off");
  return RUN_ALL_TESTS();
}
