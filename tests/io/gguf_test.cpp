// GGUF: the format (every value type, the byte layout field by field, alignment and offsets, Q8_0, every
// refusal, random corruption) and vkmind models in it (round trips, llama.cpp's q/k permutation, the
// embedded tokenizer, what llama.cpp-produced files vkmind cannot run).
#include "model/io/gguf.hpp"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "engine/error.hpp"
#include "model/io/gguf_model.hpp"
#include "tests/io/fuzz.hpp"
#include "tests/support/test_util.hpp"

namespace vkm::io {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::span<const uint8_t> as_bytes(const auto& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(v[0])};
}

// The format's encodings, appended by hand, to compare files with byte by byte.
struct Bytes {
  std::string s;
  template <class T>
  Bytes& put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(std::string_view v) {
    put<uint64_t>(v.size());
    s.append(v);
    return *this;
  }
  Bytes& zeros(size_t n) {
    s.append(n, '\0');
    return *this;
  }
};

TEST(Gguf, EveryValueTypeRoundTrips) {
  TempDir d;
  GgufValue u8{.type = GgufType::u8, .uint = 200}, i8{.type = GgufType::i8, .sint = -100},
      u16{.type = GgufType::u16, .uint = 60000}, i16{.type = GgufType::i16, .sint = -30000},
      i32{.type = GgufType::i32, .sint = -2000000000}, u64{.type = GgufType::u64, .uint = ~0ull},
      i64{.type = GgufType::i64, .sint = INT64_MIN}, f64{.type = GgufType::f64, .real = 0.1};
  GgufValue bytes{.type = GgufType::array, .elem = GgufType::u8};
  for (int i = 0; i < 5; ++i) bytes.items.push_back({.type = GgufType::u8, .uint = uint64_t(i)});
  const GgufMetadata md = {{"u8", u8}, {"i8", i8}, {"u16", u16}, {"i16", i16}, {"u32", GgufValue::u32(4000000000u)},
                           {"i32", i32}, {"f32", GgufValue::f32(1.5f)}, {"bool", GgufValue::boolean(true)},
                           {"string", GgufValue::string("héllo")}, {"u64", u64}, {"i64", i64}, {"f64", f64},
                           {"strings", GgufValue::strings({"a", "", "b c"})}, {"ints", GgufValue::i32s({3, -4})},
                           {"bytes", bytes}, {"general.alignment", GgufValue::u32(64)}};
  const std::vector<float> a = test::random_floats(7 * 3, 1), q = test::random_floats(64 * 2, 2);
  const auto q8 = quantize_q8_0(q);
  const std::vector<uint16_t> h = {0x3c00, 0xc000, 0x7bff};
  write_gguf(d.path / "x.gguf", md,
             {{"a", GgmlType::f32, {7, 3}, as_bytes(a)},
              {"h", GgmlType::f16, {3}, as_bytes(h)},
              {"b", GgmlType::bf16, {1, 1, 1, 3}, as_bytes(h)},
              {"q", GgmlType::q8_0, {2, 64}, q8}});
  const GgufFile f = GgufFile::open(d.path / "x.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  ASSERT_EQ(f.metadata().size(), md.size());
  for (size_t i = 0; i < md.size(); ++i) {
    const auto& [key, want] = md[i];
    const auto& [got_key, got] = f.metadata()[i];
    EXPECT_EQ(got_key, key);
    EXPECT_EQ(got.type, want.type) << key;
    EXPECT_EQ(got.uint, want.uint) << key;
    EXPECT_EQ(got.sint, want.sint) << key;
    EXPECT_EQ(got.real, want.type == GgufType::f32 ? double(float(want.real)) : want.real) << key;
    EXPECT_EQ(got.str, want.str) << key;
    ASSERT_EQ(got.items.size(), want.items.size()) << key;
    for (size_t j = 0; j < got.items.size(); ++j) {
      EXPECT_EQ(got.items[j].str, want.items[j].str);
      EXPECT_EQ(got.items[j].uint, want.items[j].uint);
      EXPECT_EQ(got.items[j].sint, want.items[j].sint);
    }
  }
  EXPECT_EQ(f.get_uint("u8"), 200u);
  EXPECT_EQ(f.get_uint("u64"), ~0ull);
  EXPECT_EQ(f.get_float("f32"), 1.5);
  EXPECT_EQ(f.get_float("i16"), -30000.0);
  EXPECT_EQ(f.get_string("string"), "héllo");
  EXPECT_EQ(f.get_strings("strings"), (std::vector<std::string>{"a", "", "b c"}));
  EXPECT_EQ(f.get_ints("ints"), (std::vector<int64_t>{3, -4}));
  test::expect_error("metadata i8 must be a non-negative integer", [&] { f.get_uint("i8"); });
  test::expect_error("metadata string must be a number (is string)", [&] { f.get_float("string"); });
  test::expect_error("metadata u8 must be a string (is u8)", [&] { f.get_string("u8"); });
  test::expect_error("metadata ints must be an array of strings", [&] { f.get_strings("ints"); });
  test::expect_error("metadata strings must be an array of integers", [&] { f.get_ints("strings"); });
  test::expect_error("metadata nothing is missing", [&] { f.get_uint("nothing"); });

  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.find_tensor("b")->shape, (Shape{1, 1, 1, 3}));
  EXPECT_EQ(f.find_tensor("nothing"), nullptr);
  EXPECT_EQ(f.read_f32(*f.find_tensor("a")), a);
  EXPECT_EQ(f.read_f32(*f.find_tensor("h")), (std::vector<float>{1.0f, -2.0f, 65504.0f}));
  EXPECT_EQ(f.read_f32(*f.find_tensor("b"))[0], 0.0078125f);  // 0x3c00 as bf16: 2^-7
  EXPECT_EQ(f.find_tensor("q")->bytes.size(), 4u * 34);
  for (const GgufTensor& t : f.tensors())
    EXPECT_EQ(uint64_t(t.bytes.data() - f.tensors()[0].bytes.data()) % 64, 0u) << t.name;
}

TEST(Gguf, LayoutByteByByte) {
  TempDir d;
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<uint16_t> h = {0x3c00, 0x4000, 0x4200, 0x4400, 0x4500};
  write_gguf(d.path / "x.gguf",
             {{"general.architecture", GgufValue::string("llama")}, {"x.eps", GgufValue::f32(0.5f)},
              {"x.ids", GgufValue::i32s({1, -2})}, {"x.flag", GgufValue::boolean(true)}},
             {{"a", GgmlType::f32, {2, 3}, as_bytes(a)}, {"blk.0.h", GgmlType::f16, {5}, as_bytes(h)}});
  Bytes want;
  want.s = "GGUF";
  want.put<uint32_t>(3).put<uint64_t>(2).put<uint64_t>(4);
  want.str("general.architecture").put<uint32_t>(8).str("llama");
  want.str("x.eps").put<uint32_t>(6).put<float>(0.5f);
  want.str("x.ids").put<uint32_t>(9).put<uint32_t>(5).put<uint64_t>(2).put<int32_t>(1).put<int32_t>(-2);
  want.str("x.flag").put<uint32_t>(7).put<uint8_t>(1);
  // Tensor infos: dimensions innermost first, type, offset from the data start (32-byte aligned).
  want.str("a").put<uint32_t>(2).put<uint64_t>(3).put<uint64_t>(2).put<uint32_t>(0).put<uint64_t>(0);
  want.str("blk.0.h").put<uint32_t>(1).put<uint64_t>(5).put<uint32_t>(1).put<uint64_t>(32);
  want.zeros((32 - want.s.size() % 32) % 32);
  const size_t data_start = want.s.size();
  want.s.append(reinterpret_cast<const char*>(a.data()), 24);
  want.zeros(8);
  want.s.append(reinterpret_cast<const char*>(h.data()), 10);
  want.zeros(22);
  EXPECT_EQ(read_file(d.path / "x.gguf"), want.s);
  EXPECT_EQ(GgufFile::open(d.path / "x.gguf").data_offset(), data_start);
}

TEST(Gguf, Q8_0MatchesGgmlsRounding) {
  std::vector<float> x = test::random_floats(96, 3, -2.0f, 2.0f);
  std::fill(x.begin() + 64, x.end(), 0.0f);  // an all-zero block: scale 0, quotients 0
  x[5] = -2.5f;                              // the block's largest magnitude maps to -127
  const auto q = quantize_q8_0(x);
  ASSERT_EQ(q.size(), 3u * 34);
  EXPECT_EQ(q[2 + 5], uint8_t(-127));
  for (int b = 0; b < 3; ++b) {
    double amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(double(x[b * 32 + i])));
    uint16_t d16;
    std::memcpy(&d16, &q[b * 34], 2);
    EXPECT_EQ(d16, f32_to_f16(float(amax / 127))) << b;
    for (int i = 0; i < 32; ++i) {
      const double want = amax > 0 ? std::round(double(x[b * 32 + i]) * 127 / amax) : 0;
      EXPECT_NEAR(double(int8_t(q[b * 34 + 2 + i])), want, 1.0) << b << " " << i;  // f32 vs double rounding
    }
  }
  std::vector<float> back(96);
  dequantize(GgmlType::q8_0, q, back);
  for (int i = 0; i < 96; ++i) EXPECT_NEAR(back[i], x[i], 2.5 / 127 * 0.51 + 1e-3) << i;
  EXPECT_EQ(back[70], 0.0f);
  test::expect_error("multiple of 32", [&] { quantize_q8_0(std::vector<float>(33)); });
}

TEST(Gguf, RefusesMalformedFiles) {
  TempDir d;
  auto open = [&](const std::string& bytes) { GgufFile::open(d.write("bad.gguf", bytes)); };
  auto head = [](uint32_t version, uint64_t tensors, uint64_t kvs) {
    Bytes b;
    b.s = "GGUF";
    b.put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
    return b;
  };
  auto with_kv = [&](auto&& value) {
    Bytes b = head(3, 0, 1);
    b.str("k");
    value(b);
    return b.s;
  };
  test::expect_error("no 'GGUF' magic", [&] { open("GGML"); });
  test::expect_error("GGUF version 1 is not supported", [&] { open(head(1, 0, 0).s); });
  test::expect_error("inside the tensor count", [&] { open(head(3, 0, 0).s.substr(0, 12)); });
  test::expect_error("the metadata count 1000000 is more than the file can hold", [&] { open(head(3, 0, 1000000).s); });
  test::expect_error("the tensor count 99 is more than", [&] { open(head(3, 99, 0).s); });
  test::expect_error("inside metadata key 0", [&] { open(head(3, 0, 1).put<uint64_t>(100).zeros(10).s); });
  test::expect_error("unknown value type 13 of metadata k", [&] { open(with_kv([](Bytes& b) { b.put<uint32_t>(13); })); });
  test::expect_error("metadata k: a bool must be 0 or 1", [&] { open(with_kv([](Bytes& b) { b.put<uint32_t>(7).put<uint8_t>(2); })); });
  test::expect_error("arrays of arrays are not supported",
                     [&] { open(with_kv([](Bytes& b) { b.put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(0); })); });
  test::expect_error("the array length 4611686018427387904 is more than",
                     [&] { open(with_kv([](Bytes& b) { b.put<uint32_t>(9).put<uint32_t>(4).put<uint64_t>(1ull << 62); })); });
  test::expect_error("inside metadata k", [&] { open(with_kv([](Bytes& b) { b.put<uint32_t>(8).put<uint64_t>(100).str("x"); })); });
  test::expect_error("general.alignment must be a u32 power of two", [&] {
    Bytes b = head(3, 0, 1);
    b.str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
    open(b.s);
  });
  test::expect_error("metadata key k appears twice", [&] {
    Bytes b = head(3, 0, 2);
    b.str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(2);
    open(b.s);
  });
  auto tensor = [&](Bytes& b, const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    b.str(name).put<uint32_t>(uint32_t(ne.size()));
    for (uint64_t n : ne) b.put<uint64_t>(n);
    b.put<uint32_t>(type).put<uint64_t>(offset);
  };
  auto one_tensor = [&](std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
    Bytes b = head(3, 1, 0);
    tensor(b, "t", ne, type, offset);
    b.zeros((32 - b.s.size() % 32) % 32 + data_bytes);
    return b.s;
  };
  test::expect_error("5 dimensions (at most 4), tensor t", [&] { open(one_tensor({1, 1, 1, 1, 1}, 0, 0, 4)); });
  test::expect_error("ggml type 12 is not one vkmind reads (F32, F16, BF16, Q8_0), tensor t",
                     [&] { open(one_tensor({256}, 12, 0, 256)); });
  test::expect_error("Q8_0 rows must be whole blocks of 32, tensor t", [&] { open(one_tensor({40}, 8, 0, 68)); });
  test::expect_error("the dimensions overflow, tensor t", [&] { open(one_tensor({1ull << 40, 1ull << 40}, 0, 0, 4)); });
  test::expect_error("data offset 32, expected 0, tensor t", [&] { open(one_tensor({2}, 0, 32, 64)); });
  test::expect_error("the data runs past the end of the file (truncated?), tensor t", [&] { open(one_tensor({4}, 0, 0, 15)); });
  test::expect_error("inside the padding before the data", [&] { open(one_tensor({4}, 0, 0, 0).substr(0, 60)); });
  test::expect_error("the name appears twice, tensor t", [&] {
    Bytes b = head(3, 2, 0);
    tensor(b, "t", {1}, 0, 0);
    tensor(b, "t", {1}, 0, 32);
    open(b.s);
  });
  test::expect_error("the name is longer than 63 bytes", [&] { open(head(3, 1, 0).str(std::string(64, 'x')).zeros(32).s); });
  test::expect_error("nothing.gguf: cannot open", [&] { GgufFile::open(d.path / "nothing.gguf"); });
}

TEST(Gguf, WriterRefusesBadTensorsAndFailedWrites) {
  TempDir d;
  const std::vector<float> v(40, 1.0f);
  test::expect_error("cannot store F32[3] in 160 bytes", [&] { write_gguf(d.path / "x", {}, {{"a", GgmlType::f32, {3}, as_bytes(v)}}); });
  test::expect_error("tensor q", [&] { write_gguf(d.path / "x", {}, {{"q", GgmlType::q8_0, {40}, as_bytes(v).first(34)}}); });
  test::expect_error("general.alignment must be", [&] {
    write_gguf(d.path / "x", {{"general.alignment", GgufValue::u32(0)}}, {});
  });
  test::expect_error("/dev/full: writing failed", [&] {
    const std::vector<float> big(1 << 16);
    write_gguf("/dev/full", {}, {{"a", GgmlType::f32, {1 << 16}, as_bytes(big)}});
  });
}

// A file of few metadata values and several tensors, so corruption reaches the tensor infos often.
TEST(Gguf, FuzzCorruptFilesNeverCrash) {
  TempDir d;
  const std::vector<float> a = test::random_floats(64 * 3, 5);
  const auto q = quantize_q8_0(std::span(a).first(64));
  write_gguf(d.path / "x.gguf", {{"general.architecture", GgufValue::string("llama")}, {"n", GgufValue::u32(7)},
                                 {"list", GgufValue::strings({"a", "bc"})}, {"ids", GgufValue::i32s({1, 2, 3})}},
             {{"a", GgmlType::f32, {3, 64}, as_bytes(a)}, {"b", GgmlType::f16, {2, 3, 16}, as_bytes(a).first(192)},
              {"c", GgmlType::bf16, {5}, as_bytes(a).first(10)}, {"q", GgmlType::q8_0, {1, 64}, q}});
  const std::string valid = read_file(d.path / "x.gguf");
  const auto counts = test::fuzz_file(d.path, valid, GgufFile::open(d.path / "x.gguf").data_offset(), 3000, 7,
                                      [](const fs::path& p) {
                                        const GgufFile f = GgufFile::open(p);
                                        for (const GgufTensor& t : f.tensors()) f.read_f32(t);
                                      });
  EXPECT_GT(counts.refused, 1500);
  EXPECT_GT(counts.parsed, 10);
}

// ---- models ----

model::ModelConfig tiny_config(bool tied) {
  model::ModelConfig c = model::preset("tiny");
  c.vocab = 730;  // the tokenizer's 722 tokens and 8 rows no token uses
  c.tie_embeddings = tied;
  c.eps = 1e-5;
  c.rope_theta = 1e6;
  return c;
}

tok::Tokenizer tiny_tokenizer() { return tok::Tokenizer::load(test::data_dir() / "tokenizer" / "tiny" / "tokenizer.json"); }

class GgufModel : public testing::TestWithParam<bool> {};

TEST_P(GgufModel, F32RoundTripIsExact) {
  TempDir d;
  const model::ParamLayout layout(tiny_config(GetParam()));
  const auto params = model::init_params(layout, 21);
  save_gguf(d.path / "m.gguf", layout, params, tiny_tokenizer(), GgmlType::f32, "tiny");
  EXPECT_TRUE(is_gguf(d.path / "m.gguf"));
  const ModelFiles m = load_model(d.path / "m.gguf");  // load_model takes GGUF files too
  EXPECT_EQ(model::config_to_json(m.config), model::config_to_json(layout.config()));
  ASSERT_EQ(m.params.size(), params.size());
  EXPECT_EQ(std::memcmp(m.params.data(), params.data(), params.size() * 4), 0);

  const GgufFile f = GgufFile::open(d.path / "m.gguf");
  EXPECT_EQ(f.tensors().size(), layout.entries().size());
  EXPECT_EQ(f.find_tensor("output.weight") != nullptr, !GetParam());
}

INSTANTIATE_TEST_SUITE_P(Tied, GgufModel, testing::Bool());

TEST(GgufModelFile, MetadataAndPermutationAsLlamaCppExpects) {
  TempDir d;
  const model::ModelConfig c = tiny_config(true);
  const model::ParamLayout layout(c);
  const auto params = model::init_params(layout, 4);
  const tok::Tokenizer tokenizer = tiny_tokenizer();
  save_gguf(d.path / "m.gguf", layout, params, tokenizer, GgmlType::f16, "tiny");
  const GgufFile f = GgufFile::open(d.path / "m.gguf");
  auto type_of = [&](const char* key) { return f.find(key) ? f.find(key)->type : GgufType::array; };
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("general.name"), "tiny");
  EXPECT_EQ(f.get_uint("general.file_type"), 1u);  // MOSTLY_F16
  const std::pair<const char*, int64_t> counts[] = {
      {"llama.context_length", c.max_positions}, {"llama.embedding_length", c.hidden}, {"llama.block_count", c.layers},
      {"llama.feed_forward_length", c.ffn},      {"llama.rope.dimension_count", c.head_dim},
      {"llama.attention.head_count", c.heads},   {"llama.attention.head_count_kv", c.kv_heads},
      {"llama.vocab_size", c.vocab},             {"tokenizer.ggml.bos_token_id", 1},
      {"tokenizer.ggml.eos_token_id", 2},        {"tokenizer.ggml.padding_token_id", 0}};
  for (auto [key, value] : counts) {
    EXPECT_EQ(type_of(key), GgufType::u32) << key;
    EXPECT_EQ(int64_t(f.get_uint(key)), value) << key;
  }
  EXPECT_EQ(type_of("llama.rope.freq_base"), GgufType::f32);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 1e6);
  EXPECT_EQ(type_of("llama.attention.layer_norm_rms_epsilon"), GgufType::f32);
  EXPECT_EQ(type_of("tokenizer.ggml.add_bos_token"), GgufType::boolean);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(f.get_string("tokenizer.chat_template"), tok::kChatTemplate);
  const auto tokens = f.get_strings("tokenizer.ggml.tokens");
  const auto types = f.get_ints("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.size(), 730u);
  EXPECT_EQ(tokens[1], "<|im_start|>");
  EXPECT_EQ(types[1], 3);    // control
  EXPECT_EQ(types[300], 1);  // normal
  EXPECT_EQ(tokens[725], "[PAD725]");
  EXPECT_EQ(types[725], 5);  // unused
  EXPECT_EQ(f.get_strings("tokenizer.ggml.merges").size(), tokenizer.model().merges.size());

  // Norms stay F32; q and k rows are reordered within each head so that pairs (i, i + D/2) become (2i, 2i+1).
  EXPECT_EQ(f.find_tensor("blk.0.attn_norm.weight")->type, GgmlType::f32);
  EXPECT_EQ(f.find_tensor("blk.0.ffn_down.weight")->type, GgmlType::f16);
  const int64_t C = c.hidden, D = c.head_dim;
  for (const char* name : {"blk.1.attn_q.weight", "blk.1.attn_k.weight"}) {
    const bool q = std::string_view(name).find("attn_q") != std::string_view::npos;
    const auto got = f.read_f32(*f.find_tensor(name));
    const model::ParamEntry& e = layout.entries()[q ? layout.layer(1).q : layout.layer(1).k];
    EXPECT_EQ(e.shape[0], (q ? c.heads : c.kv_heads) * D);
    for (int64_t row = 0; row < e.shape[0]; ++row) {
      const int64_t h = row / D, i = row % D / 2, j = row % 2;
      const float want = params[size_t(e.offset + (h * D + j * D / 2 + i) * C + 3)];
      ASSERT_EQ(got[size_t(row * C + 3)], f16_to_f32(f32_to_f16(want))) << name << " row " << row;
    }
  }
}

TEST(GgufModelFile, HalfAndQ8_0Precision) {
  const model::ParamLayout layout(tiny_config(true));
  const auto params = model::init_params(layout, 9);
  for (GgmlType t : {GgmlType::f16, GgmlType::bf16, GgmlType::q8_0}) {
    TempDir d;
    save_gguf(d.path / "m.gguf", layout, params, tiny_tokenizer(), t);
    const ModelFiles m = load_gguf(d.path / "m.gguf");
    const double err = test::rel_l2(test::to_double(m.params), test::to_double(params));
    const double bound = t == GgmlType::f16 ? 5e-4 : t == GgmlType::bf16 ? 4e-3 : 1e-2;
    EXPECT_LT(err, bound) << ggml_type_name(t);
    EXPECT_GT(err, 0) << ggml_type_name(t);
    if (t == GgmlType::q8_0) {
      EXPECT_EQ(GgufFile::open(d.path / "m.gguf").find_tensor("token_embd.weight")->type, GgmlType::q8_0);
    }
  }
}

TEST(GgufModelFile, TokenizerRoundTrips) {
  TempDir d;
  const model::ParamLayout layout(tiny_config(true));
  const tok::Tokenizer original = tiny_tokenizer();
  save_gguf(d.path / "m.gguf", layout, model::init_params(layout, 1), original);
  const tok::Tokenizer back = load_gguf_tokenizer(d.path / "m.gguf");
  EXPECT_EQ(back.model().vocab, original.model().vocab);
  EXPECT_EQ(back.model().merges, original.model().merges);
  EXPECT_EQ(back.model().special, original.model().special);
  const std::string text = tok::apply_chat_template({{"user", "Hello, wörld! 123  tabs\tand\nlines"}}, true);
  EXPECT_EQ(back.encode(text), original.encode(text));
  EXPECT_EQ(load_model_tokenizer(d.path / "m.gguf").encode(text), original.encode(text));

  // Qwen2's tokenizer (NFC, its own split regex, an added token) as llama.cpp's "qwen2" pre-tokenizer.
  const tok::Tokenizer qwen = tok::Tokenizer::load(test::data_dir() / "tokenizer" / "tiny_qwen" / "tokenizer.json");
  save_gguf(d.path / "q.gguf", layout, model::init_params(layout, 1), qwen);
  EXPECT_EQ(GgufFile::open(d.path / "q.gguf").get_string("tokenizer.ggml.pre"), "qwen2");
  const tok::Tokenizer qwen_back = load_gguf_tokenizer(d.path / "q.gguf");
  EXPECT_EQ(qwen_back.model().added, qwen.model().added);
  EXPECT_EQ(qwen_back.encode(text + "<tool_call>x"), qwen.encode(text + "<tool_call>x"));

  test::expect_error("tokenizer has 722 tokens but the model's vocab_size is 300", [&] {
    const model::ParamLayout small(model::preset("tiny"));
    save_gguf(d.path / "s.gguf", small, model::init_params(small, 1), original);
  });
  tok::BpeModel nfkc = original.model();
  nfkc.nfkc = true;
  test::expect_error("normalizes text (NFKC/NFC), which GGUF's gpt2 tokenizer cannot express",
                     [&] { save_gguf(d.path / "s.gguf", layout, model::init_params(layout, 1), tok::Tokenizer(nfkc)); });
  EXPECT_FALSE(fs::exists(d.path / "s.gguf"));
}

// Files vkmind cannot run, as llama.cpp's converter would write them for other models.
TEST(GgufModelFile, RefusesWhatVkmindCannotRun) {
  TempDir d;
  const model::ParamLayout layout(tiny_config(true));
  save_gguf(d.path / "m.gguf", layout, model::init_params(layout, 1), tiny_tokenizer(), GgmlType::f32);
  const GgufFile good = GgufFile::open(d.path / "m.gguf");
  // A copy of the file with metadata and tensors changed.
  auto variant = [&](const std::function<void(GgufMetadata&, std::vector<GgufTensor>&)>& change) {
    GgufMetadata md = good.metadata();
    std::vector<GgufTensor> tensors = good.tensors();
    change(md, tensors);
    write_gguf(d.path / "v.gguf", md, tensors);
    return d.path / "v.gguf";
  };
  auto set = [](GgufMetadata& md, const std::string& key, GgufValue v) {
    for (auto& [k, value] : md)
      if (k == key) return void(value = std::move(v));
    md.emplace_back(key, std::move(v));
  };
  test::expect_error("metadata general.architecture is \"qwen2\"; vkmind runs \"llama\"", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "general.architecture", GgufValue::string("qwen2")); }));
  });
  test::expect_error("metadata llama.rope.scaling.type asks for rope scaling", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "llama.rope.scaling.type", GgufValue::string("yarn")); }));
  });
  test::expect_error("metadata llama.expert_count", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "llama.expert_count", GgufValue::u32(8)); }));
  });
  test::expect_error("metadata llama.rope.dimension_count is 8", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "llama.rope.dimension_count", GgufValue::u32(8)); }));
  });
  test::expect_error("metadata llama.block_count is 1000000000 but the file holds only", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "llama.block_count", GgufValue::u32(1000000000)); }));
  });
  test::expect_error("metadata llama.attention.layer_norm_rms_epsilon is missing", [&] {
    load_gguf(variant([&](auto& md, auto&) { std::erase_if(md, [](auto& kv) { return kv.first.ends_with("epsilon"); }); }));
  });
  test::expect_error("head_count", [&] {
    load_gguf(variant([&](auto& md, auto&) { set(md, "llama.attention.head_count", GgufValue::u32(3)); }));
  });
  test::expect_error("unknown tensor (not part of a llama model vkmind runs), tensor rope_freqs.weight", [&] {
    load_gguf(variant([&](auto&, auto& t) { t.push_back({"rope_freqs.weight", GgmlType::f32, {8}, t[1].bytes.first(32)}); }));
  });
  test::expect_error("missing tensor blk.0.ffn_up.weight", [&] {
    load_gguf(variant([&](auto&, auto& t) { std::erase_if(t, [](auto& x) { return x.name == "blk.0.ffn_up.weight"; }); }));
  });
  test::expect_error("shape [64], the metadata needs [64,64], tensor blk.0.attn_q.weight", [&] {
    load_gguf(variant([&](auto&, auto& t) {
      for (auto& x : t)
        if (x.name == "blk.0.attn_q.weight") x = {x.name, GgmlType::f32, {64}, x.bytes.first(256)};
    }));
  });
  test::expect_error("tokenizer.ggml.model is \"llama\"", [&] {
    load_gguf_tokenizer(variant([&](auto& md, auto&) { set(md, "tokenizer.ggml.model", GgufValue::string("llama")); }));
  });
  test::expect_error("tokenizer.ggml.pre \"llama-bpe\" is not a pre-tokenizer vkmind implements", [&] {
    load_gguf_tokenizer(variant([&](auto& md, auto&) { set(md, "tokenizer.ggml.pre", GgufValue::string("llama-bpe")); }));
  });
  test::expect_error("is not two tokens separated by a space", [&] {
    load_gguf_tokenizer(variant([&](auto& md, auto&) { set(md, "tokenizer.ggml.merges", GgufValue::strings({"ab"})); }));
  });
}

TEST(GgufModelFile, FuzzCorruptFilesNeverCrash) {
  TempDir d;
  model::ModelConfig c = tiny_config(false);
  c.layers = 1;
  const model::ParamLayout layout(c);
  save_gguf(d.path / "m.gguf", layout, model::init_params(layout, 2), tiny_tokenizer(), GgmlType::q8_0);
  const std::string valid = read_file(d.path / "m.gguf");
  const size_t data_offset = GgufFile::open(d.path / "m.gguf").data_offset();
  const auto counts = test::fuzz_file(d.path, valid, data_offset, 2500, 99, [](const fs::path& p) {
    const GgufFile f = GgufFile::open(p);
    for (const GgufTensor& t : f.tensors()) f.read_f32(t);
    load_gguf(p);
    load_gguf_tokenizer(p);
  });
  EXPECT_GT(counts.refused, 1000);
  EXPECT_GT(counts.parsed, 10);
}

}  // namespace
}  // namespace vkm::io
