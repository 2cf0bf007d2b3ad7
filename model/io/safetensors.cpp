#include "model/io/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "model/io/float_codec.hpp"

namespace vkm::io {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr std::string_view kMetadataKey = "__metadata__";

constexpr std::pair<std::string_view, DType> kDTypes[] = {
    {"F32", DType::f32}, {"F16", DType::f16}, {"BF16", DType::bf16}, {"I32", DType::i32}, {"U32", DType::u32}};
// The format's other dtypes: valid files, but nothing vkmind can hold.
constexpr std::string_view kOtherDTypes[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F64", "I64", "U64"};

// numel · element size, or nothing when it does not fit 64 bits.
std::optional<uint64_t> byte_count(const Shape& shape, size_t elem_size) {
  uint64_t n = elem_size;
  for (int64_t d : shape) {
    if (d < 0 || (d != 0 && n > UINT64_MAX / uint64_t(d))) return std::nullopt;
    n *= uint64_t(d);
  }
  return n;
}

}  // namespace

std::string_view safetensors_dtype_name(DType t) {
  for (auto [name, dtype] : kDTypes)
    if (dtype == t) return name;
  throw Error("no safetensors dtype for " + std::string(dtype_name(t)));
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string() + ": ";
  ojson header = ojson::object();
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const TensorRecord& t : tensors) {
    if (t.name == kMetadataKey || !names.insert(t.name).second)
      throw Error(where + "the tensor name repeats or is reserved, tensor " + t.name);
    const auto bytes = byte_count(t.shape, dtype_size(t.dtype));
    if (!bytes || *bytes != t.bytes.size())
      throw Error(where + "shape " + shape_string(t.shape) + " of " + std::string(dtype_name(t.dtype)) + " needs " +
                  (bytes ? std::to_string(*bytes) : "too many") + " bytes, given " + std::to_string(t.bytes.size()) +
                  ", tensor " + t.name);
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const ojson::exception& e) {  // a name or metadata string that is not UTF-8
    throw Error(where + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t size = text.size();

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(where + "cannot create the file: " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(&size), 8);
  out.write(text.data(), std::streamsize(text.size()));
  for (const TensorRecord& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  out.close();
  if (!out) throw Error(where + "writing failed (disk full?): " + std::strerror(errno));
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  const std::span<const uint8_t> all = f.file_.bytes();
  const std::string where = path.string() + ": ";
  auto fail = [&](const std::string& what) { throw Error(where + what); };

  if (all.size() < 8) fail("too short for a safetensors file (" + std::to_string(all.size()) + " bytes)");
  uint64_t header_size;
  std::memcpy(&header_size, all.data(), 8);
  if (header_size > all.size() - 8)
    fail("the header size " + std::to_string(header_size) + " runs past the end of the file (" +
         std::to_string(all.size()) + " bytes): truncated or not a safetensors file");
  const auto header = all.subspan(8, header_size);
  const auto data = all.subspan(8 + header_size);
  if (header.empty() || header[0] != '{') fail("the header does not start with '{': not a safetensors file");

  // nlohmann keeps the last of repeated keys; the callback sees every top-level key to refuse repeats.
  std::set<std::string> seen;
  std::string repeated;
  json j;
  try {
    j = json::parse(header.begin(), header.end(), [&](int depth, json::parse_event_t event, json& parsed) {
      if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second &&
          repeated.empty())
        repeated = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {
    fail(std::string("the header is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail("the header is not a JSON object");
  if (!repeated.empty()) fail("the name appears twice in the header, tensor " + repeated);

  for (const auto& [name, info] : j.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object()) fail("__metadata__ must be an object of strings");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail("__metadata__ value of '" + key + "' must be a string (is " + value.dump() + ")");
        f.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { fail(what + ", tensor " + name); };
    if (!info.is_object()) bad("the entry must be an object");
    const json* dtype = info.contains("dtype") ? &info["dtype"] : nullptr;
    const json* shape = info.contains("shape") ? &info["shape"] : nullptr;
    const json* offsets = info.contains("data_offsets") ? &info["data_offsets"] : nullptr;
    if (!dtype || !dtype->is_string()) bad("'dtype' must be a string");
    if (!shape || !shape->is_array()) bad("'shape' must be an array");
    if (!offsets || !offsets->is_array() || offsets->size() != 2) bad("'data_offsets' must be [BEGIN, END]");

    TensorRecord t{name, DType::f32, {}, {}};
    const std::string dtype_text = dtype->get<std::string>();
    const auto known = std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](auto& d) { return d.first == dtype_text; });
    if (known == std::end(kDTypes)) {
      const bool other = std::find(std::begin(kOtherDTypes), std::end(kOtherDTypes), dtype_text) != std::end(kOtherDTypes);
      bad("dtype " + dtype->dump() + (other ? " is not one vkmind reads (F32, F16, BF16, I32, U32)" : " is unknown"));
    }
    t.dtype = known->second;
    for (const json& d : *shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        bad("'shape' must hold non-negative integers (is " + shape->dump() + ")");
      t.shape.push_back(d.get<int64_t>());
    }
    for (const json& o : *offsets)
      if (!o.is_number_unsigned()) bad("'data_offsets' must be non-negative integers (is " + offsets->dump() + ")");
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > data.size())
      bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] lie outside the " +
          std::to_string(data.size()) + " data bytes (truncated file?)");
    const auto bytes = byte_count(t.shape, dtype_size(t.dtype));
    if (!bytes || *bytes != end - begin)
      bad("shape " + shape->dump() + " of " + dtype_text + " needs " + (bytes ? std::to_string(*bytes) : "too many") +
          " bytes but data_offsets span " + std::to_string(end - begin));
    t.bytes = data.subspan(begin, end - begin);
    f.tensors_.push_back(std::move(t));
  }

  // The data in offset order must be exactly the tensors, one after another.
  std::stable_sort(f.tensors_.begin(), f.tensors_.end(),
                   [&](const TensorRecord& a, const TensorRecord& b) { return a.bytes.data() < b.bytes.data(); });
  uint64_t expected = 0;
  for (const TensorRecord& t : f.tensors_) {
    const uint64_t begin = uint64_t(t.bytes.data() - data.data());
    if (begin != expected)
      fail(std::string(begin < expected ? "data overlaps the previous tensor's" : "a gap in the data before it") +
           " (starts at " + std::to_string(begin) + ", expected " + std::to_string(expected) + "), tensor " + t.name);
    expected = begin + t.bytes.size();
  }
  if (expected != data.size())
    fail(std::to_string(data.size() - expected) + " data bytes after the last tensor belong to no tensor");
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_.emplace(f.tensors_[i].name, i);
  return f;
}

const TensorRecord* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<float> SafetensorsFile::read_f32(const TensorRecord& t) const {
  if (!is_float_dtype(t.dtype))
    throw Error(path().string() + ": " + std::string(safetensors_dtype_name(t.dtype)) +
                " is not a float dtype (F32, F16, BF16), tensor " + t.name);
  std::vector<float> out(t.bytes.size() / dtype_size(t.dtype));
  decode_floats(t.dtype, t.bytes, out);
  return out;
}

}  // namespace vkm::io
