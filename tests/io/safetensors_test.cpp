// safetensors: round trips, the header byte by byte against the specification, every refusal of a malformed
// file, and random corruption that must give an error or a valid parse (never a crash or a read outside the
// file).
#include "model/io/safetensors.hpp"

#include <cstring>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/error.hpp"
#include "tests/io/fuzz.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::io {
namespace {

using test::TempDir;

std::span<const uint8_t> as_bytes(const auto& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0])};
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// A file from a header text and data bytes, framed as the format says (size prefix, no padding added).
std::string framed(const std::string& header, const std::string& data = "") {
  const uint64_t n = header.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + header + data;
}

struct Sample {
  std::vector<float> a = test::random_floats(6, 1);
  std::vector<uint16_t> h = {0x3c00, 0xc000, 0x0001, 0x7bff, 0x8000};  // f16 1, -2, smallest subnormal, max, -0
  std::vector<uint16_t> b = {0x3f80, 0x4049, 0xff80};                  // bf16 1, 3.14, -inf
  std::vector<int32_t> ids = {7, -3, 1 << 30};
  std::vector<TensorRecord> records() const {
    return {{"a.weight", DType::f32, {2, 3}, as_bytes(a)},
            {"empty", DType::f32, {0, 4}, {}},
            {"h", DType::f16, {5}, as_bytes(h)},
            {"b", DType::bf16, {1, 3}, as_bytes(b)},
            {"ids", DType::i32, {3}, as_bytes(ids)}};
  }
};

TEST(Safetensors, RoundTrip) {
  TempDir d;
  const Sample s;
  write_safetensors(d.path / "x.safetensors", s.records(), {{"format", "pt"}, {"note", "ünïcode"}});
  SafetensorsFile f = SafetensorsFile::open(d.path / "x.safetensors");
  ASSERT_EQ(f.tensors().size(), 5u);
  for (const TensorRecord& want : s.records()) {
    const TensorRecord* got = f.find(want.name);
    ASSERT_NE(got, nullptr) << want.name;
    EXPECT_EQ(got->dtype, want.dtype);
    EXPECT_EQ(got->shape, want.shape);
    ASSERT_EQ(got->bytes.size(), want.bytes.size());
    EXPECT_TRUE(std::equal(got->bytes.begin(), got->bytes.end(), want.bytes.begin())) << want.name;
  }
  EXPECT_EQ(f.tensors()[0].name, "a.weight");  // data order
  EXPECT_EQ(f.find("absent"), nullptr);
  EXPECT_EQ(f.metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcode"}}));
  EXPECT_EQ(f.read_f32(*f.find("a.weight")), s.a);
  const auto h = f.read_f32(*f.find("h"));
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], std::ldexp(1.0f, -24));
  EXPECT_EQ(h[3], 65504.0f);
  EXPECT_TRUE(std::signbit(h[4]));
  const auto b = f.read_f32(*f.find("b"));
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], 3.140625f);
  EXPECT_EQ(b[2], -INFINITY);
  EXPECT_TRUE(f.read_f32(*f.find("empty")).empty());
  test::expect_error("tensor ids", [&] { f.read_f32(*f.find("ids")); });

  SafetensorsFile moved = std::move(f);
  EXPECT_EQ(moved.read_f32(*moved.find("a.weight")), s.a);  // the mapping moves with it
}

TEST(Safetensors, HeaderLayoutByteByByte) {
  TempDir d;
  const std::vector<float> a = {1.0f, 2.0f};
  const std::vector<uint16_t> h = {0x3c00, 0x4000, 0x4200};
  write_safetensors(d.path / "x.safetensors",
                    {{"a", DType::f32, {2}, as_bytes(a)}, {"h", DType::f16, {3, 1}, as_bytes(h)}}, {{"format", "pt"}});
  const std::string bytes = read_file(d.path / "x.safetensors");
  // The header: metadata first, then the tensors in the given order with contiguous offsets, padded with
  // spaces to a multiple of 8 so the data starts 8-byte aligned.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("h":{"dtype":"F16","shape":[3,1],"data_offsets":[8,14]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  ASSERT_EQ(header.size() % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + header.size() + 14);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(uint8_t(bytes[i]), uint8_t(header.size() >> (8 * i))) << "size byte " << i;
  EXPECT_EQ(bytes.substr(8, header.size()), header);
  const std::string data = bytes.substr(8 + header.size());
  EXPECT_EQ(data.substr(0, 8), std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8));  // 1.0f, 2.0f little-endian
  EXPECT_EQ(data.substr(8), std::string("\x00\x3c\x00\x40\x00\x42", 6));
}

TEST(Safetensors, ReadsAnyValidLayout) {
  // Key order differs from data order, whitespace and newlines in the header, no metadata, no padding.
  TempDir d;
  const std::string header = "{ \"second\" : {\"data_offsets\":[4,6],\"dtype\":\"BF16\",\"shape\":[1]},\n"
                             "  \"first\": {\"dtype\":\"U32\",\"shape\":[],\"data_offsets\":[0,4], \"extra\": 1}}";
  const auto path = d.write("x.safetensors", framed(header, std::string("\x05\x00\x00\x00\x80\x3f", 6)));
  const SafetensorsFile f = SafetensorsFile::open(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "first");
  EXPECT_EQ(f.tensors()[0].shape, Shape{});
  EXPECT_EQ(f.read_f32(*f.find("second")), std::vector<float>{1.0f});
  EXPECT_TRUE(f.metadata().empty());
}

TEST(Safetensors, RefusesMalformedFiles) {
  TempDir d;
  auto open = [&](const std::string& bytes) { SafetensorsFile::open(d.write("bad.safetensors", bytes)); };
  const std::string f32x2 = R"("dtype":"F32","shape":[2])";
  const std::string eight(8, '\x01');
  test::expect_error("too short", [&] { open("abc"); });
  test::expect_error("runs past the end", [&] { open(framed("{}").substr(0, 9)); });
  test::expect_error("does not start with '{'", [&] { open(framed(" {}")); });
  test::expect_error("not valid JSON", [&] { open(framed("{\"a\":")); });
  test::expect_error("not valid JSON", [&] { open(framed("{\"a\":\"\xff\"}")); });  // invalid UTF-8
  test::expect_error("twice in the header, tensor a",
                     [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", eight)); });
  test::expect_error("is unknown, tensor a", [&] { open(framed(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight)); });
  test::expect_error("not one vkmind reads", [&] { open(framed(R"({"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})", eight)); });
  test::expect_error("'dtype' must be a string, tensor a", [&] { open(framed(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", eight)); });
  test::expect_error("'shape' must be an array", [&] { open(framed(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", eight)); });
  test::expect_error("non-negative integers", [&] { open(framed(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)); });
  test::expect_error("non-negative integers", [&] { open(framed(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", eight)); });
  test::expect_error("'data_offsets' must be [BEGIN, END]", [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[0]}}", eight)); });
  test::expect_error("'data_offsets' must be non-negative", [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[-1,7]}}", eight)); });
  test::expect_error("outside the 8 data bytes", [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,16]}}", eight)); });
  test::expect_error("outside the 8 data bytes", [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[8,0]}}", eight)); });
  test::expect_error("data_offsets span 4, tensor a", [&] { open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,4]}}", eight)); });
  test::expect_error("too many", [&] {
    open(framed(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight));
  });
  test::expect_error("a gap in the data before it (starts at 4, expected 0), tensor a",
                     [&] { open(framed(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)); });
  test::expect_error("overlaps the previous tensor's (starts at 0, expected 8), tensor", [&] {
    open(framed("{\"a\":{" + f32x2 + ",\"data_offsets\":[0,8]},\"b\":{" + f32x2 + ",\"data_offsets\":[0,8]}}", eight));
  });
  test::expect_error("4 data bytes after the last tensor",
                     [&] { open(framed(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight)); });
  test::expect_error("__metadata__ value of 'n' must be a string", [&] { open(framed(R"({"__metadata__":{"n":1}})")); });
  test::expect_error("__metadata__ must be an object", [&] { open(framed(R"({"__metadata__":[]})")); });
  test::expect_error("the entry must be an object, tensor a", [&] { open(framed(R"({"a":3})")); });
  test::expect_error("no-such-file.safetensors: cannot open", [&] { SafetensorsFile::open(d.path / "no-such-file.safetensors"); });
  test::expect_error("not a regular file", [&] { SafetensorsFile::open(d.path); });
}

TEST(Safetensors, WriterRefusesBadRecordsAndFailedWrites) {
  TempDir d;
  const std::vector<float> v(3, 1.0f);
  test::expect_error("needs 8 bytes, given 12, tensor a",
                     [&] { write_safetensors(d.path / "x", {{"a", DType::f32, {2}, as_bytes(v)}}); });
  test::expect_error("repeats or is reserved, tensor a", [&] {
    write_safetensors(d.path / "x", {{"a", DType::f32, {3}, as_bytes(v)}, {"a", DType::f32, {3}, as_bytes(v)}});
  });
  test::expect_error("reserved, tensor __metadata__",
                     [&] { write_safetensors(d.path / "x", {{"__metadata__", DType::f32, {3}, as_bytes(v)}}); });
  test::expect_error("no-dir/x: cannot create",
                     [&] { write_safetensors(d.path / "no-dir" / "x", {{"a", DType::f32, {3}, as_bytes(v)}}); });
  // A full disk shows when the buffered data is flushed at close.
  const std::vector<float> big(1 << 16, 1.0f);
  test::expect_error("/dev/full: writing failed",
                     [&] { write_safetensors("/dev/full", {{"a", DType::f32, {1 << 16}, as_bytes(big)}}); });
}

TEST(Safetensors, FuzzCorruptFilesNeverCrash) {
  TempDir d;
  const Sample s;
  write_safetensors(d.path / "valid", s.records(), {{"format", "pt"}});
  const std::string valid = read_file(d.path / "valid");
  uint64_t header_size;
  std::memcpy(&header_size, valid.data(), 8);
  const auto counts = test::fuzz_file(d.path, valid, 8 + header_size, 3000, 1234, [](const std::filesystem::path& p) {
    const SafetensorsFile f = SafetensorsFile::open(p);
    for (const TensorRecord& t : f.tensors())
      if (t.dtype != DType::i32 && t.dtype != DType::u32) f.read_f32(t);
  });
  EXPECT_GT(counts.refused, 1500);
  EXPECT_GT(counts.parsed, 10);
}

}  // namespace
}  // namespace vkm::io
