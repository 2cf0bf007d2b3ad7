// The model: its config (presets, parameter counts, config.json), the flat parameter layout and its init, and
// the whole transformer's forward and backward recorded as one program, checked against the double reference
// of the whole model (tests/reference/model.hpp), which is itself checked by finite differences.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/ops/fill.hpp"
#include "model/config.hpp"
#include "model/params.hpp"
#include "model/train/graph.hpp"
#include "model/transformer.hpp"
#include "tests/reference/adamw.hpp"
#include "tests/reference/grad_norm.hpp"
#include "tests/reference/model.hpp"
#include "tests/support/test_util.hpp"

namespace vkm {
namespace {

using model::ModelConfig;
using model::ParamLayout;
using test::ctx;

ref::ModelShape shape_of(const ModelConfig& c, int64_t B, int64_t T) {
  return {.B = B, .T = T, .C = c.hidden, .L = c.layers, .Hq = c.heads, .Hkv = c.kv_heads, .D = c.head_dim,
          .F = c.ffn, .V = c.vocab, .rope_theta = c.rope_theta, .eps = c.eps, .tied = c.tie_embeddings};
}

// The reference's tensors in the layout's order (embedding; per layer the norm, q, k, v, o, norm, gate, up,
// down; final norm; the head when untied).
std::vector<ref::Vec*> tensors(ref::ModelWeights& w, bool tied) {
  std::vector<ref::Vec*> t{&w.embed};
  for (auto& l : w.layers)
    for (ref::Vec* v : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.wgate, &l.wup, &l.wdown})
      t.push_back(v);
  t.push_back(&w.norm);
  if (!tied) t.push_back(&w.head);
  return t;
}

ref::ModelWeights unflatten(const ParamLayout& layout, const std::vector<float>& flat) {
  ref::ModelWeights w;
  w.layers.resize(size_t(layout.config().layers));
  const auto t = tensors(w, layout.config().tie_embeddings);
  EXPECT_EQ(t.size(), layout.entries().size());
  for (size_t i = 0; i < t.size(); ++i) {
    const auto& e = layout.entries()[i];
    t[i]->assign(flat.begin() + e.offset, flat.begin() + e.offset + e.numel());
  }
  return w;
}

std::vector<double> flatten(const ParamLayout& layout, ref::ModelWeights w) {
  std::vector<double> flat(size_t(layout.total_elems()), 0.0);
  const auto t = tensors(w, layout.config().tie_embeddings);
  for (size_t i = 0; i < t.size(); ++i) std::copy(t[i]->begin(), t[i]->end(), flat.begin() + layout.entries()[i].offset);
  return flat;
}

ref::ModelInputs random_inputs(int64_t B, int64_t T, int64_t V, uint32_t seed) {
  std::mt19937 g(seed);
  ref::ModelInputs in;
  for (int64_t i = 0; i < B * T; ++i) {
    in.ids.push_back(int32_t(g() % V));
    in.targets.push_back(int32_t(g() % V));
    in.mask.push_back(i % 5 == 3 || i % 7 == 0 ? 0.0 : 1.0);  // some positions masked
  }
  return in;
}

TEST(ModelConfig, PresetParameterCounts) {
  // MiniMind2's own counts: embedding V*C + per layer (q C*C, k and v C*Hkv*D, o C*C, 3*F*C, 2C) + final C.
  auto formula = [](const ModelConfig& c) {
    const int64_t C = c.hidden, kv = c.kv_heads * c.head_dim;
    return c.vocab * C + c.layers * (2 * C * C + 2 * C * kv + 3 * c.ffn * C + 2 * C) + C;
  };
  const ModelConfig small = model::preset("minimind2-small"), big = model::preset("minimind2");
  EXPECT_EQ(small.parameter_count(), 25'829'888);
  EXPECT_EQ(small.parameter_count(), formula(small));
  EXPECT_EQ(big.parameter_count(), 104'030'976);
  EXPECT_EQ(big.parameter_count(), formula(big));
  for (const auto& name : model::preset_names()) {
    const ModelConfig c = model::preset(name);
    EXPECT_EQ(ParamLayout(c).parameter_count(), c.parameter_count()) << name;
  }
  ModelConfig untied = small;
  untied.tie_embeddings = false;
  EXPECT_EQ(untied.parameter_count(), 25'829'888 + 6400 * 512);
  EXPECT_EQ(ParamLayout(untied).parameter_count(), untied.parameter_count());
  test::expect_error("unknown model preset 'nope'", [] { model::preset("nope"); });
}

TEST(ModelConfig, JsonRoundTripAndErrors) {
  for (const auto& name : model::preset_names()) {
    const ModelConfig c = model::preset(name);
    const ModelConfig back = model::config_from_json(model::config_to_json(c));
    EXPECT_EQ(model::config_to_json(back), model::config_to_json(c)) << name;
    EXPECT_EQ(back.hidden, c.hidden);
    EXPECT_EQ(back.kv_heads, c.kv_heads);
    EXPECT_EQ(back.ffn, c.ffn);
    EXPECT_EQ(back.rope_theta, c.rope_theta);
    EXPECT_EQ(back.eps, c.eps);
    EXPECT_EQ(back.tie_embeddings, c.tie_embeddings);
    EXPECT_EQ(back.max_positions, c.max_positions);
  }
  const std::string text = model::config_to_json(model::preset("tiny"));
  EXPECT_NE(text.find("\"LlamaForCausalLM\""), std::string::npos);
  EXPECT_NE(text.find("\"model_type\": \"llama\""), std::string::npos);
  auto without = [&](const std::string& field) {
    auto j = nlohmann::json::parse(text);
    j.erase(field);
    return j.dump();
  };
  auto with = [&](const std::string& field, nlohmann::json v) {
    auto j = nlohmann::json::parse(text);
    j[field] = v;
    return j.dump();
  };
  test::expect_error("dir/config.json: field 'hidden_size' is missing",
                     [&] { model::config_from_json(without("hidden_size"), "dir/config.json"); });
  test::expect_error("my.json: field 'vocab_size' must be an integer",
                     [&] { model::config_from_json(with("vocab_size", "300"), "my.json"); });
  test::expect_error("field 'model_type'", [&] { model::config_from_json(with("model_type", "gpt2")); });
  test::expect_error("field 'head_dim'", [&] { model::config_from_json(with("head_dim", 8)); });
  test::expect_error("field 'rope_scaling'",
                     [&] { model::config_from_json(with("rope_scaling", {{"type", "yarn"}})); });
  test::expect_error("num_key_value_heads", [&] { model::config_from_json(with("num_key_value_heads", 3)); });
  test::expect_error("c.json: not valid JSON", [&] { model::config_from_json("{", "c.json"); });
  test::expect_error("/nonexistent/config.json: cannot open", [] { model::load_config("/nonexistent/config.json"); });
}

TEST(ParamLayout, NamesAlignmentAndInit) {
  const ModelConfig c = model::preset("tiny");
  const ParamLayout layout(c);
  ASSERT_EQ(layout.entries().size(), size_t(2 + 9 * c.layers));
  EXPECT_EQ(layout.entries().front().name, "model.embed_tokens.weight");
  EXPECT_EQ(layout.entries().back().name, "model.norm.weight");
  EXPECT_EQ(layout.entry("model.layers.1.self_attn.k_proj.weight").shape, (Shape{c.kv_heads * c.head_dim, c.hidden}));
  EXPECT_EQ(layout.head(), layout.embed());
  int64_t end = 0;
  for (const auto& e : layout.entries()) {
    EXPECT_EQ(e.offset % model::kParamAlign, 0) << e.name;
    EXPECT_GE(e.offset, end) << e.name;
    end = e.offset + e.numel();
  }
  EXPECT_LE(end, layout.total_elems());
  for (int64_t l = 0; l < c.layers; ++l) {
    const auto& gate = layout.entries()[layout.layer(l).gate];
    const auto& up = layout.entries()[layout.layer(l).up];
    EXPECT_EQ(up.offset, gate.offset + gate.numel()) << "gate_proj and up_proj adjacent";
  }
  test::expect_error("no parameter named 'lm_head.weight'", [&] { layout.entry("lm_head.weight"); });

  const std::vector<float> a = model::init_params(layout, 7), b = model::init_params(layout, 7),
                           other = model::init_params(layout, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (const auto& e : layout.entries())
    for (int64_t i = 0; i < e.numel(); ++i) {
      const float v = a[e.offset + i];
      if (e.kind == model::ParamKind::norm) {
        EXPECT_EQ(v, 1.0f) << e.name;
      } else {
        sum += v, sq += double(v) * v, ++n;
      }
    }
  const double mean = sum / n, stdev = std::sqrt(sq / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 3 * 0.02 / std::sqrt(double(n)) + 1e-5);
  EXPECT_NEAR(stdev, 0.02, 0.02 * 0.01);
  int64_t padding_nonzero = 0, covered = 0;
  std::vector<bool> in_tensor(a.size(), false);
  for (const auto& e : layout.entries())
    for (int64_t i = 0; i < e.numel(); ++i) in_tensor[e.offset + i] = true, ++covered;
  for (size_t i = 0; i < a.size(); ++i) padding_nonzero += !in_tensor[i] && a[i] != 0.0f;
  EXPECT_EQ(padding_nonzero, 0);
  EXPECT_EQ(covered, c.parameter_count());
}

// The device model against the double reference for the tiny config: loss and every parameter gradient.
class TransformerTest : public testing::TestWithParam<bool> {};

TEST_P(TransformerTest, LossAndEveryGradientMatchReference) {
  ModelConfig c = model::preset("tiny");
  c.tie_embeddings = GetParam();
  const int64_t B = 2, T = 17;
  const ParamLayout layout(c);
  const std::vector<float> init = model::init_params(layout, 1234);
  const ref::ModelInputs in = random_inputs(B, T, c.vocab, 5);

  Arena params_arena(ctx(), "params");
  const model::ParamBuffers buf = model::allocate_params(params_arena, layout, false);
  ctx().write(buf.values, init);
  model::Transformer tf(ctx(), layout, B, T);
  ctx().write(tf.ids(), in.ids);
  ctx().write(tf.targets(), in.targets);
  test::write_values(tf.mask(), in.mask);

  // The trainer's shape of a step: zero the gradients, then forward and backward.
  Program step(ctx(), "step");
  ops::fill(step, buf.grads, 0.0);
  tf.record(step, buf.values, buf.grads);
  const auto t0 = std::chrono::steady_clock::now();
  const auto bytes = test::run_twice_bytes({tf.loss(), buf.grads}, {}, [&] { ctx().wait(ctx().submit(step)); });
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("  two steps (first records) %.1f ms; %zu dispatches, %zu barriers, activations %.2f MiB\n", ms,
              step.dispatch_count(), step.barrier_count(), double(tf.arena_bytes()) / (1 << 20));

  const ref::ModelShape s = shape_of(c, B, T);
  const ref::ModelWeights w = unflatten(layout, init);
  const ref::ModelGrads want = ref::model_backward(s, w, in);
  const float loss = ctx().read<float>(tf.loss())[0];
  const double loss_err = std::abs(loss - want.loss) / std::abs(want.loss);
  std::printf("  loss %.7f (reference %.7f), relative error %.2e\n", loss, want.loss, loss_err);
  EXPECT_LE(loss_err, 1e-5);

  const std::vector<float> got = ctx().read<float>(buf.grads);
  const std::vector<double> want_flat = flatten(layout, want.dw);
  const double all = test::rel_l2(test::to_double(got), want_flat);
  std::printf("  whole gradient buffer: relative L2 %.2e\n", all);
  EXPECT_LE(all, 1e-4);
  double worst = 0;
  for (const auto& e : layout.entries()) {
    const std::vector<double> g(got.begin() + e.offset, got.begin() + e.offset + e.numel()),
        r(want_flat.begin() + e.offset, want_flat.begin() + e.offset + e.numel());
    const double err = test::rel_l2(g, r);
    worst = std::max(worst, err);
    EXPECT_LE(err, 1e-4) << e.name;
  }
  std::printf("  worst per-tensor relative L2 %.2e\n", worst);
  for (size_t i = 0; i < got.size(); ++i)  // padding stays zero
    if (want_flat[i] == 0 && got[i] != 0) ADD_FAILURE() << "gradient element " << i << " is " << got[i];

  // Gradients accumulate: one more submission without zeroing doubles them.
  Program again(ctx(), "accumulate");
  tf.record(again, buf.values, buf.grads);
  ctx().wait(ctx().submit(again));
  std::vector<double> twice = want_flat;
  for (double& v : twice) v *= 2;
  EXPECT_LE(test::rel_l2(test::to_double(ctx().read<float>(buf.grads)), twice), 1e-4) << "accumulated";
}

INSTANTIATE_TEST_SUITE_P(Heads, TransformerTest, testing::Values(true, false),
                         [](const auto& info) { return info.param ? "tied" : "untied"; });

// The reference model's gradient is the gradient of its loss: central differences on sampled parameters of
// every tensor.
TEST(ModelReference, BackwardIsGradientOfLoss) {
  ModelConfig c = model::preset("tiny");
  c.hidden = 16, c.heads = 2, c.kv_heads = 1, c.head_dim = 8, c.ffn = 24, c.vocab = 23;
  const int64_t B = 2, T = 5;
  const ParamLayout layout(c);
  // A larger spread than 0.02 so that attention scores and every path carry gradients well above roundoff.
  c.initializer_range = 0.5;
  const ParamLayout wide(c);
  ref::ModelWeights w = unflatten(layout, model::init_params(wide, 3));
  const ref::ModelInputs in = random_inputs(B, T, c.vocab, 9);
  const ref::ModelShape s = shape_of(c, B, T);
  ref::ModelGrads g = ref::model_backward(s, w, in);
  EXPECT_NEAR(g.loss, ref::model_loss(s, w, in), 1e-14);
  const auto params = tensors(w, true), grads = tensors(g.dw, true);
  std::mt19937 pick(11);
  std::vector<double> numeric, analytic;
  for (size_t t = 0; t < params.size(); ++t)
    for (int k = 0; k < 3; ++k) {
      ref::Vec& p = *params[t];
      const size_t i = pick() % p.size();
      const double keep = p[i], h = 1e-5;
      p[i] = keep + h;
      const double up = ref::model_loss(s, w, in);
      p[i] = keep - h;
      const double down = ref::model_loss(s, w, in);
      p[i] = keep;
      numeric.push_back((up - down) / (2 * h));
      analytic.push_back((*grads[t])[i]);
      EXPECT_NEAR(analytic.back(), numeric.back(), 1e-8 + 1e-6 * std::abs(numeric.back())) << "tensor " << t;
    }
  const double err = test::rel_l2(analytic, numeric);
  std::printf("  %zu sampled parameters: relative L2 %.2e\n", numeric.size(), err);
  EXPECT_LE(err, 1e-7);
}

// Three optimizer steps of the trainer's step program (two accumulated micro-batches each, clipping active)
// against the reference: gradients of the double model averaged over the micro-batches, clipped by their
// global norm, then torch's AdamW.
TEST(TrainGraph, ThreeAdamWStepsMatchReference) {
  const ModelConfig c = model::preset("tiny");
  const int B = 2, T = 9, accum = 2;
  const double lr = 1e-2, clip = 0.5;
  const ParamLayout layout(c);
  const std::vector<float> init = model::init_params(layout, 21);
  const ops::AdamWConfig cfg{0.9f, 0.95f, 1e-8f, 0.1f};
  train::GraphOptions go;
  go.batch = B, go.seq = T, go.accum = accum, go.adamw = cfg, go.clip = clip;
  train::TrainGraph graph(ctx(), layout, go);
  graph.upload(init);

  const size_t n = init.size();
  std::vector<double> p = test::to_double(init), m(n, 0.0), v(n, 0.0);
  const ref::ModelShape s = shape_of(c, B, T);
  for (uint32_t t = 1; t <= 3; ++t) {
    std::vector<double> g(n, 0.0);
    double want_loss = 0;
    for (int k = 0; k < accum; ++k) {
      const ref::ModelInputs in = random_inputs(B, T, c.vocab, 100 * t + uint32_t(k));
      data::Batch b{B, T, in.ids, in.targets, std::vector<float>(in.mask.begin(), in.mask.end()), {}};
      graph.set_batch(k, b);
      std::vector<float> pf(p.begin(), p.end());
      const ref::ModelGrads r = ref::model_backward(s, unflatten(layout, pf), in);
      const std::vector<double> flat = flatten(layout, r.dw);
      for (size_t i = 0; i < n; ++i) g[i] += flat[i] / accum;
      want_loss += r.loss / accum;
    }
    graph.submit_step(lr, t);
    const train::StepStats got = graph.finish_step();
    const double norm = ref::l2_norm(g);
    ref::adamw_step(p, m, v, g, lr, t, ref::clip_factor(norm, clip), {0.9, 0.95, 1e-8, 0.1});
    const double perr = test::rel_l2(test::to_double(graph.params()), p);
    std::printf("  step %u: loss %.6f (reference %.6f), |g| %.5f (reference %.5f), parameters relative L2 %.2e\n", t,
                got.loss, want_loss, got.grad_norm, norm, perr);
    EXPECT_NEAR(got.loss, want_loss, 1e-5 * want_loss);
    EXPECT_NEAR(got.grad_norm, norm, 1e-4 * norm);
    EXPECT_GT(norm, clip) << "the test should exercise clipping";
    EXPECT_FALSE(got.non_finite);
    EXPECT_LE(perr, 1e-5);
    EXPECT_LE(test::rel_l2(test::to_double(graph.m()), m), 1e-4);
    EXPECT_LE(test::rel_l2(test::to_double(graph.v()), v), 1e-4);
  }
}

TEST(Transformer, RefusesActivationsLargerThanTheHeap) {
  const ModelConfig c = model::preset("tiny");
  const ParamLayout layout(c);
  EXPECT_GT(model::activation_bytes(c, 1 << 24, 256), uint64_t(1) << 45);
  test::expect_error("activations of a batch of 16777216 x 256 tokens need",
                     [&] { model::Transformer(ctx(), layout, 1 << 24, 256); });
  test::expect_error("exceed max_position_embeddings", [&] { model::Transformer(ctx(), layout, 1, c.max_positions + 1); });
}

}  // namespace
}  // namespace vkm
