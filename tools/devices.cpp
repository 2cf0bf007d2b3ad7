// `vkmind devices`: every Vulkan device and what vkmind cares about, as text or JSON.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "engine/context.hpp"
#include "engine/instance.hpp"
#include "engine/ops/attention.hpp"
#include "engine/ops/matmul.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

std::string gib(uint64_t b) {
  char s[32];
  if (b < (1ull << 30))
    std::snprintf(s, sizeof s, "%.0f MiB", double(b) / double(1ull << 20));
  else
    std::snprintf(s, sizeof s, "%.1f GiB", double(b) / double(1ull << 30));
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

nlohmann::json coop_json(const std::vector<CoopMatrixShape>& shapes) {
  auto a = nlohmann::json::array();
  for (auto& s : shapes)
    a.push_back({{"m", s.m}, {"n", s.n}, {"k", s.k}, {"a", s.a}, {"b", s.b}, {"c", s.c}, {"result", s.result},
                 {"scope", s.scope}});
  return a;
}

// The kernel f16 products (the mixed-precision forward and backward) would take, and why.
ops::MatmulChoice f16_matmul(const DeviceInfo& d) {
  return ops::choose_matmul_path(d, DType::f16, DType::f16, ContextOptions::cooperative_matrix_from_env());
}

// The kernels f16 attention takes, at MiniMind2-small's head dim: the tensor cores as for matmuls where the head
// dim is a multiple of 16 (and its tiles fit shared memory), else the per-thread kernels.
constexpr int64_t kHeadDim = 64;
ops::MatmulChoice f16_attention(const DeviceInfo& d) {
  return ops::choose_attention_path(d, DType::f16, kHeadDim, ContextOptions::cooperative_matrix_from_env());
}
std::string describe_attention(const ops::MatmulChoice& c) {
  if (c.path != ops::MatmulPath::cooperative) return "per-thread kernels (" + c.why + ")";
  return c.describe() + " at head dim " + std::to_string(kHeadDim) +
         ", as at any multiple of 16 that fits shared memory; per-thread kernels at others";
}

const char* path_name(const ops::MatmulChoice& c) {
  return c.path == ops::MatmulPath::cooperative ? "cooperative" : "tiled";
}

nlohmann::json to_json(const DeviceInfo& d, bool selected) {
  const ops::MatmulChoice matmul = f16_matmul(d), attention = f16_attention(d);
  nlohmann::json heaps = nlohmann::json::array();
  for (auto& h : d.heaps) heaps.push_back({{"bytes", h.size}, {"device_local", h.device_local}, {"types", h.types}});
  return {{"index", d.index},
          {"name", d.name},
          {"selected", selected},
          {"type", d.type},
          {"vulkan", d.version_string()},
          {"driver", d.driver},
          {"vendor_id", d.vendor_id},
          {"device_id", d.device_id},
          {"fp16_arithmetic", d.shader_float16},
          {"int8_arithmetic", d.shader_int8},
          {"int16_arithmetic", d.shader_int16},
          {"storage_16bit", d.storage_16bit},
          {"storage_8bit", d.storage_8bit},
          {"subgroup_size", d.subgroup_size},
          {"subgroup_size_range", {d.min_subgroup_size, d.max_subgroup_size}},
          {"subgroup_size_control", d.subgroup_size_control},
          {"subgroup_ops", d.subgroup_in_compute ? d.subgroup_ops : std::vector<std::string>{}},
          {"shared_memory_bytes", d.max_shared_memory},
          {"max_workgroup_invocations", d.max_workgroup_invocations},
          {"max_workgroup_size", d.max_workgroup_size},
          {"max_workgroup_count", d.max_workgroup_count},
          {"max_push_constants", d.max_push_constants},
          {"max_storage_buffer_range", d.max_storage_buffer_range},
          {"max_memory_allocation", d.max_memory_allocation},
          {"buffer_device_address", d.buffer_device_address},
          {"timestamps", d.timestamps},
          {"timestamp_period_ns", d.timestamp_period_ns},
          {"memory_heaps", heaps},
          {"nv_cooperative_matrix", coop_json(d.nv_coop_shapes)},
          {"khr_cooperative_matrix", coop_json(d.khr_coop_shapes)},
          {"vulkan_memory_model", d.vulkan_memory_model},
          {"matmul_f16", {{"path", path_name(matmul)}, {"detail", matmul.describe()}}},
          {"attention_f16", {{"path", path_name(attention)}, {"detail", describe_attention(attention)}}}};
}

void print_coop(const char* label, bool has, const std::vector<CoopMatrixShape>& shapes) {
  std::printf("  %-26s %s\n", label, has ? (shapes.empty() ? "yes (no shapes reported)" : "yes") : "no");
  for (auto& s : shapes)
    std::printf("      %ux%ux%u  A=%s B=%s C=%s -> %s  (%s)\n", s.m, s.n, s.k, s.a.c_str(), s.b.c_str(), s.c.c_str(),
                s.result.c_str(), s.scope.c_str());
}

void print(const DeviceInfo& d, bool selected) {
  auto yn = [](bool b) { return b ? "yes" : "no"; };
  std::printf("[%u] %s%s\n", d.index, d.name.c_str(), selected ? "   <- selected" : "");
  std::printf("  %-26s %s, Vulkan %s, driver %s\n", "type", d.type.c_str(), d.version_string().c_str(), d.driver.c_str());
  std::printf("  %-26s fp16 %s, int8 %s, int16 %s\n", "arithmetic", yn(d.shader_float16), yn(d.shader_int8),
              yn(d.shader_int16));
  std::printf("  %-26s 16-bit %s, 8-bit %s\n", "storage buffers", yn(d.storage_16bit), yn(d.storage_8bit));
  std::printf("  %-26s %u (range %u..%u, control %s)\n", "subgroup size", d.subgroup_size, d.min_subgroup_size,
              d.max_subgroup_size, yn(d.subgroup_size_control));
  std::printf("  %-26s %s\n", "subgroup ops (compute)",
              d.subgroup_in_compute ? join(d.subgroup_ops).c_str() : "none");
  std::printf("  %-26s %u bytes\n", "shared memory", d.max_shared_memory);
  std::printf("  %-26s %u invocations, size %u x %u x %u, count %u x %u x %u\n", "workgroups",
              d.max_workgroup_invocations, d.max_workgroup_size[0], d.max_workgroup_size[1], d.max_workgroup_size[2],
              d.max_workgroup_count[0], d.max_workgroup_count[1], d.max_workgroup_count[2]);
  std::printf("  %-26s %u bytes\n", "push constants", d.max_push_constants);
  std::printf("  %-26s %s (max storage buffer range), %s (max allocation)\n", "buffers",
              gib(d.max_storage_buffer_range).c_str(), gib(d.max_memory_allocation).c_str());
  for (size_t h = 0; h < d.heaps.size(); ++h)
    std::printf("  %-26s %s%s: %s\n", h ? "" : "memory heaps", gib(d.heaps[h].size).c_str(),
                d.heaps[h].device_local ? " device-local" : "", d.heaps[h].types.c_str());
  std::printf("  %-26s %s (period %.2f ns)\n", "timestamps", yn(d.timestamps), d.timestamp_period_ns);
  std::printf("  %-26s %s\n", "buffer device address", yn(d.buffer_device_address));
  print_coop("VK_NV_cooperative_matrix", d.nv_cooperative_matrix, d.nv_coop_shapes);
  print_coop("VK_KHR_cooperative_matrix", d.khr_cooperative_matrix, d.khr_coop_shapes);
  std::printf("  %-26s %s\n", "matmul f16", f16_matmul(d).describe().c_str());
  std::printf("  %-26s %s\n", "attention f16", describe_attention(f16_attention(d)).c_str());
}

}  // namespace

namespace {

int devices(const Common& c, bool json) {
  Instance instance;
  const DeviceInfo& chosen = instance.select(c.device);
  if (json) {
    nlohmann::json all = nlohmann::json::array();
    for (auto& d : instance.devices()) all.push_back(to_json(d, &d == &chosen));
    std::cout << all.dump(2) << "\n";
    return 0;
  }
  for (auto& d : instance.devices()) {
    print(d, &d == &chosen);
    std::printf("\n");
  }
  return 0;
}

}  // namespace

void add_devices(CLI::App& app, const Common& common, int& exit_code) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("devices", "List the Vulkan devices and what they support");
  sub->add_flag("--json", *json, "Print JSON");
  on_run(sub, exit_code, [&common, json] { return devices(common, *json); });
}

}  // namespace vkm::tools
