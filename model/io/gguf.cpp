#include "model/io/gguf.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

#include "engine/error.hpp"
#include "model/io/float_codec.hpp"

namespace vkm::io {

namespace {

constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kVersion = 3;
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";
constexpr size_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr size_t kMaxNameBytes = 63;  // GGML_MAX_NAME less its terminating zero
constexpr uint64_t kQ8BlockBytes = 2 + kQ8Block;

// Bytes of a scalar of type t; 0 for strings and arrays.
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
    case GgufType::u16: case GgufType::i16: return 2;
    case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
    case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
    default: return 0;
  }
}
bool is_known(GgufType t) { return uint32_t(t) <= uint32_t(GgufType::f64); }
bool is_signed(GgufType t) {
  return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}
bool is_float(GgufType t) { return t == GgufType::f32 || t == GgufType::f64; }

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// The alignment the metadata asks for, checked.
uint32_t alignment_of(const GgufMetadata& metadata, const std::string& where) {
  for (const auto& [key, value] : metadata) {
    if (key != kAlignmentKey) continue;
    if (value.type != GgufType::u32 || value.uint == 0 || !std::has_single_bit(value.uint))
      throw Error(where + "metadata " + key + " must be a u32 power of two");
    return uint32_t(value.uint);
  }
  return kDefaultAlignment;
}

// ---- writing ----

class Writer {
 public:
  explicit Writer(const std::filesystem::path& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) throw Error(path.string() + ": cannot create the file: " + std::strerror(errno));
  }
  template <class T>
  void put(T v) {
    bytes(&v, sizeof v);
  }
  void bytes(const void* p, size_t n) {
    out_.write(static_cast<const char*>(p), std::streamsize(n));
    written_ += n;
  }
  void string(std::string_view s) {
    put<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const char zeros[256] = {};
    for (uint64_t n = align_up(written_, alignment) - written_; n > 0; n -= std::min<uint64_t>(n, sizeof zeros))
      bytes(zeros, std::min<uint64_t>(n, sizeof zeros));
  }
  void scalar(GgufType t, const GgufValue& v) {
    switch (t) {
      case GgufType::u8: case GgufType::boolean: return put<uint8_t>(uint8_t(v.uint));
      case GgufType::i8: return put<int8_t>(int8_t(v.sint));
      case GgufType::u16: return put<uint16_t>(uint16_t(v.uint));
      case GgufType::i16: return put<int16_t>(int16_t(v.sint));
      case GgufType::u32: return put<uint32_t>(uint32_t(v.uint));
      case GgufType::i32: return put<int32_t>(int32_t(v.sint));
      case GgufType::f32: return put<float>(float(v.real));
      case GgufType::u64: return put<uint64_t>(v.uint);
      case GgufType::i64: return put<int64_t>(v.sint);
      case GgufType::f64: return put<double>(v.real);
      case GgufType::string: return string(v.str);
      case GgufType::array: break;
    }
    throw Error(path_.string() + ": arrays of arrays cannot be written");
  }
  void value(const GgufValue& v) {
    put<uint32_t>(uint32_t(v.type));
    if (v.type != GgufType::array) return scalar(v.type, v);
    put<uint32_t>(uint32_t(v.elem));
    put<uint64_t>(v.items.size());
    for (const GgufValue& item : v.items) scalar(v.elem, item);
  }
  void close() {
    out_.close();
    if (!out_) throw Error(path_.string() + ": writing failed (disk full?): " + std::strerror(errno));
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  uint64_t written_ = 0;
};

// ---- reading ----

// Reads values front to back, never past the end: each read names what it was reading when the file ends.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, std::string where) : bytes_(bytes), where_(std::move(where)) {}
  [[noreturn]] void fail(const std::string& what) const { throw Error(where_ + what); }
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }
  const uint8_t* take(uint64_t n, const std::string& what) {
    if (n > left())
      fail("the file ends (at byte " + std::to_string(bytes_.size()) + ") inside " + what + ": truncated or corrupt");
    const uint8_t* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  template <class T>
  T get(const std::string& what) {
    T v;
    std::memcpy(&v, take(sizeof v, what), sizeof v);
    return v;
  }
  std::string string(const std::string& what) {
    const uint64_t n = get<uint64_t>(what);
    return {reinterpret_cast<const char*>(take(n, what)), size_t(n)};
  }
  // A count of items of at least `min_bytes` each, no more than the rest of the file can hold (so a corrupt
  // count fails here instead of allocating without bound).
  uint64_t count(uint64_t min_bytes, const std::string& what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > left() / min_bytes) fail(what + " " + std::to_string(n) + " is more than the file can hold");
    return n;
  }
  GgufType type(const std::string& what) {
    const uint32_t t = get<uint32_t>(what);
    if (!is_known(GgufType(t))) fail("unknown value type " + std::to_string(t) + " of " + what);
    return GgufType(t);
  }
  void scalar(GgufType t, GgufValue& v, const std::string& what) {
    v.type = t;
    switch (t) {
      case GgufType::u8: v.uint = get<uint8_t>(what); break;
      case GgufType::boolean:
        v.uint = get<uint8_t>(what);
        if (v.uint > 1) fail(what + ": a bool must be 0 or 1, is " + std::to_string(v.uint));
        break;
      case GgufType::i8: v.sint = get<int8_t>(what); break;
      case GgufType::u16: v.uint = get<uint16_t>(what); break;
      case GgufType::i16: v.sint = get<int16_t>(what); break;
      case GgufType::u32: v.uint = get<uint32_t>(what); break;
      case GgufType::i32: v.sint = get<int32_t>(what); break;
      case GgufType::f32: v.real = get<float>(what); break;
      case GgufType::u64: v.uint = get<uint64_t>(what); break;
      case GgufType::i64: v.sint = get<int64_t>(what); break;
      case GgufType::f64: v.real = get<double>(what); break;
      case GgufType::string: v.str = string(what); break;
      case GgufType::array: fail(what + ": arrays of arrays are not supported");
    }
  }
  GgufValue value(const std::string& what) {
    GgufValue v;
    const GgufType t = type(what);
    if (t != GgufType::array) {
      scalar(t, v, what);
      return v;
    }
    v.type = GgufType::array;
    v.elem = type(what);
    if (v.elem == GgufType::array) fail(what + ": arrays of arrays are not supported");
    const uint64_t n = count(v.elem == GgufType::string ? 8 : scalar_size(v.elem), what + ": the array length");
    v.items.resize(n);
    for (GgufValue& item : v.items) scalar(v.elem, item, what);
    return v;
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string where_;
  uint64_t pos_ = 0;
};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  return is_known(t) ? names[uint32_t(t)] : "unknown";
}

GgufValue GgufValue::u32(uint32_t v) { return {.type = GgufType::u32, .uint = v}; }
GgufValue GgufValue::f32(float v) { return {.type = GgufType::f32, .real = v}; }
GgufValue GgufValue::boolean(bool v) { return {.type = GgufType::boolean, .uint = v}; }
GgufValue GgufValue::string(std::string v) { return {.type = GgufType::string, .str = std::move(v)}; }
GgufValue GgufValue::strings(std::vector<std::string> v) {
  GgufValue a{.type = GgufType::array, .elem = GgufType::string};
  for (auto& s : v) a.items.push_back(string(std::move(s)));
  return a;
}
GgufValue GgufValue::i32s(const std::vector<int32_t>& v) {
  GgufValue a{.type = GgufType::array, .elem = GgufType::i32};
  for (int32_t x : v) a.items.push_back({.type = GgufType::i32, .sint = x});
  return a;
}

std::string_view ggml_type_name(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::bf16: return "BF16";
  }
  return "unknown";
}

uint64_t ggml_bytes(GgmlType t, uint64_t n) {
  switch (t) {
    case GgmlType::f32: return 4 * n;
    case GgmlType::f16: case GgmlType::bf16: return 2 * n;
    case GgmlType::q8_0: return n / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

std::vector<uint8_t> quantize_q8_0(std::span<const float> values) {
  if (values.size() % kQ8Block != 0) throw Error("Q8_0 needs a multiple of 32 values");
  std::vector<uint8_t> out(ggml_bytes(GgmlType::q8_0, values.size()));
  for (size_t b = 0; b < values.size() / kQ8Block; ++b) {
    const float* x = values.data() + b * kQ8Block;
    uint8_t* block = out.data() + b * kQ8BlockBytes;
    float amax = 0;
    for (int i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(x[i]));
    // As ggml's quantize_row_q8_0_ref: the quotients use the f32 scale, the block stores it as f16.
    const float d = amax / 127.0f, inv = d != 0 ? 1.0f / d : 0.0f;
    const uint16_t d16 = f32_to_f16(d);
    std::memcpy(block, &d16, 2);
    for (int i = 0; i < kQ8Block; ++i) block[2 + i] = uint8_t(int8_t(std::round(x[i] * inv)));
  }
  return out;
}

void dequantize(GgmlType t, std::span<const uint8_t> bytes, std::span<float> out) {
  switch (t) {
    case GgmlType::f32: return decode_floats(DType::f32, bytes, out);
    case GgmlType::f16: return decode_floats(DType::f16, bytes, out);
    case GgmlType::bf16: return decode_floats(DType::bf16, bytes, out);
    case GgmlType::q8_0:
      for (size_t i = 0; i < out.size(); ++i) {
        const uint8_t* block = bytes.data() + i / kQ8Block * kQ8BlockBytes;
        uint16_t d16;
        std::memcpy(&d16, block, 2);
        out[i] = f16_to_f32(d16) * float(int8_t(block[2 + i % kQ8Block]));
      }
      return;
  }
}

void write_gguf(const std::filesystem::path& path, const GgufMetadata& metadata, const std::vector<GgufTensor>& tensors) {
  const std::string where = path.string() + ": ";
  const uint32_t alignment = alignment_of(metadata, where);
  std::vector<uint64_t> offsets;
  uint64_t offset = 0;
  for (const GgufTensor& t : tensors) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= uint64_t(d);
    if (t.shape.size() > kMaxDims || t.name.size() > kMaxNameBytes || ggml_bytes(t.type, n) != t.bytes.size() ||
        (t.type == GgmlType::q8_0 && (t.shape.empty() || t.shape.back() % kQ8Block != 0)))
      throw Error(where + "cannot store " + std::string(ggml_type_name(t.type)) + shape_string(t.shape) + " in " +
                  std::to_string(t.bytes.size()) + " bytes (at most 4 dimensions, whole Q8_0 blocks per row, a name "
                  "of at most 63 bytes), tensor " + t.name);
    offsets.push_back(offset);
    offset = align_up(offset + t.bytes.size(), alignment);
  }

  Writer w(path);
  w.bytes(kMagic, 4);
  w.put<uint32_t>(kVersion);
  w.put<uint64_t>(tensors.size());
  w.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    w.string(key);
    w.value(value);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensor& t = tensors[i];
    w.string(t.name);
    w.put<uint32_t>(uint32_t(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) w.put<uint64_t>(uint64_t(*d));
    w.put<uint32_t>(uint32_t(t.type));
    w.put<uint64_t>(offsets[i]);
  }
  w.pad_to(alignment);
  for (const GgufTensor& t : tensors) {
    w.bytes(t.bytes.data(), t.bytes.size());
    w.pad_to(alignment);
  }
  w.close();
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.file_ = MappedFile::open(path);
  const auto all = f.file_.bytes();
  Reader r(all, path.string() + ": ");
  if (all.size() < 4 || std::memcmp(all.data(), kMagic, 4) != 0) r.fail("not a GGUF file (no 'GGUF' magic)");
  r.take(4, "the magic");
  f.version_ = r.get<uint32_t>("the version");
  if (f.version_ != 2 && f.version_ != 3)
    r.fail("GGUF version " + std::to_string(f.version_) + " is not supported (2 and 3 are)");
  const uint64_t n_tensors = r.get<uint64_t>("the tensor count");
  const uint64_t n_metadata = r.count(8 + 4 + 1, "the metadata count");
  if (n_tensors > r.left() / (8 + 4 + 4 + 8)) r.fail("the tensor count " + std::to_string(n_tensors) + " is more than the file can hold");

  std::set<std::string, std::less<>> keys;
  for (uint64_t i = 0; i < n_metadata; ++i) {
    std::string key = r.string("metadata key " + std::to_string(i));
    if (!keys.insert(key).second) r.fail("metadata key " + key + " appears twice");
    GgufValue value = r.value("metadata " + key);
    f.metadata_.emplace_back(std::move(key), std::move(value));
  }
  f.alignment_ = alignment_of(f.metadata_, path.string() + ": ");

  std::set<std::string, std::less<>> names;
  std::vector<uint64_t> offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = r.string("tensor info " + std::to_string(i));
    const std::string what = "tensor " + t.name;
    if (t.name.size() > kMaxNameBytes) r.fail("the name is longer than 63 bytes, " + what);
    if (!names.insert(t.name).second) r.fail("the name appears twice, " + what);
    const uint32_t n_dims = r.get<uint32_t>(what);
    if (n_dims > kMaxDims) r.fail(std::to_string(n_dims) + " dimensions (at most 4), " + what);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = r.get<uint64_t>(what);
      if (ne > uint64_t(INT64_MAX) || (ne != 0 && numel > uint64_t(INT64_MAX) / ne))
        r.fail("the dimensions overflow, " + what);
      numel *= ne;
      t.shape.insert(t.shape.begin(), int64_t(ne));
    }
    const uint32_t type = r.get<uint32_t>(what);
    t.type = GgmlType(type);
    if (ggml_type_name(t.type) == "unknown")
      r.fail("ggml type " + std::to_string(type) + " is not one vkmind reads (F32, F16, BF16, Q8_0), " + what);
    if (t.type == GgmlType::q8_0 && (t.shape.empty() || t.shape.back() % kQ8Block != 0))
      r.fail("Q8_0 rows must be whole blocks of 32, " + what);
    offsets.push_back(r.get<uint64_t>(what));
    f.tensors_.push_back(std::move(t));
  }
  r.take(align_up(r.pos(), f.alignment_) - r.pos(), "the padding before the data");
  f.data_offset_ = r.pos();

  // As llama.cpp expects: each tensor right after the previous one, at the next multiple of the alignment.
  uint64_t expected = 0;
  const uint64_t data_bytes = all.size() - f.data_offset_;
  for (size_t i = 0; i < f.tensors_.size(); ++i) {
    GgufTensor& t = f.tensors_[i];
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= uint64_t(d);
    if (offsets[i] != expected)
      r.fail("data offset " + std::to_string(offsets[i]) + ", expected " + std::to_string(expected) + ", tensor " + t.name);
    // Every type takes at least a byte per value, so this bounds the byte count before it can overflow.
    if (numel > data_bytes || expected > data_bytes || ggml_bytes(t.type, numel) > data_bytes - expected)
      r.fail("the data runs past the end of the file (truncated?), tensor " + t.name);
    t.bytes = all.subspan(f.data_offset_ + expected, ggml_bytes(t.type, numel));
    expected = align_up(expected + t.bytes.size(), f.alignment_);
  }
  return f;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

void GgufFile::fail_key(std::string_view key, const std::string& what) const {
  throw Error(path().string() + ": metadata " + std::string(key) + " " + what);
}

const GgufValue& GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail_key(key, "is missing");
  return *v;
}

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufValue& v = get(key);
  if (scalar_size(v.type) == 0 || is_float(v.type) || v.type == GgufType::boolean || (is_signed(v.type) && v.sint < 0))
    fail_key(key, "must be a non-negative integer (is " + std::string(gguf_type_name(v.type)) + ")");
  return is_signed(v.type) ? uint64_t(v.sint) : v.uint;
}

double GgufFile::get_float(std::string_view key) const {
  const GgufValue& v = get(key);
  if (is_float(v.type)) return v.real;
  if (scalar_size(v.type) == 0 || v.type == GgufType::boolean)
    fail_key(key, "must be a number (is " + std::string(gguf_type_name(v.type)) + ")");
  return is_signed(v.type) ? double(v.sint) : double(v.uint);
}

const std::string& GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::string) fail_key(key, "must be a string (is " + std::string(gguf_type_name(v.type)) + ")");
  return v.str;
}

std::vector<std::string> GgufFile::get_strings(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::array || v.elem != GgufType::string) fail_key(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const GgufValue& item : v.items) out.push_back(item.str);
  return out;
}

std::vector<int64_t> GgufFile::get_ints(std::string_view key) const {
  const GgufValue& v = get(key);
  if (v.type != GgufType::array || scalar_size(v.elem) == 0 || is_float(v.elem) || v.elem == GgufType::boolean)
    fail_key(key, "must be an array of integers");
  std::vector<int64_t> out;
  for (const GgufValue& item : v.items) out.push_back(is_signed(v.elem) ? item.sint : int64_t(item.uint));
  return out;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
  for (const GgufTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<float> GgufFile::read_f32(const GgufTensor& t) const {
  uint64_t numel = 1;
  for (int64_t d : t.shape) numel *= uint64_t(d);
  std::vector<float> out(numel);
  dequantize(t.type, t.bytes, out);
  return out;
}

}  // namespace vkm::io
