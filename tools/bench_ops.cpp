// `vkmind bench ops`: every op of a MiniMind2 training step, forward and backward, at MiniMind2-small sizes
// (hidden 512, 8/2 heads of 64, ffn 1408, vocab 6400, 25.8M parameters), timed with GPU timestamps.
#include <cstdio>
#include <functional>
#include <string>

#include "engine/context.hpp"
#include "engine/memory.hpp"
#include "engine/ops/adamw.hpp"
#include "engine/ops/attention.hpp"
#include "engine/ops/cross_entropy.hpp"
#include "engine/ops/elementwise.hpp"
#include "engine/ops/embedding.hpp"
#include "engine/ops/grad_norm.hpp"
#include "engine/ops/matmul.hpp"
#include "engine/ops/rmsnorm.hpp"
#include "engine/ops/rope.hpp"
#include "engine/ops/swiglu.hpp"
#include "engine/program.hpp"
#include "tools/bench_util.hpp"
#include "tools/commands.hpp"

namespace vkm::tools {

namespace {

struct BenchOpsOptions {
  int64_t batch = 8, seq = 512;
  int repeats = 5;
  std::string dtype = "f32";  // activations: f32, or f16 (weights' working copy too; master weights stay f32)
};

// MiniMind2-small.
constexpr int64_t kHidden = 512, kLayers = 8, kHeads = 8, kKvHeads = 2, kHeadDim = 64, kFfn = 1408, kVocab = 6400;
constexpr int64_t kParams = kVocab * kHidden + kHidden +
                            kLayers * (2 * kHidden * kHidden + 2 * kHidden * kKvHeads * kHeadDim +
                                       3 * kFfn * kHidden + 2 * kHidden);

class Bench {
 public:
  Bench(Context& ctx, int repeats) : ctx_(ctx), repeats_(repeats) {
    std::printf("%-22s %-4s %10s %10s %10s\n", "op", "pass", "ms", "GFLOP/s", "GB/s");
  }

  // Records `record` into a profiled program, runs it once to warm up and `repeats` times, and prints the
  // median GPU time of all its commands with the rates that `flop` and `bytes` imply.
  void operator()(const char* op, const char* pass, const std::function<void(Program&)>& record, double flop,
                  double bytes) {
    Program p(ctx_, op, /*profile=*/true);
    record(p);
    std::vector<double> runs;
    for (int r = 0; r <= repeats_; ++r) {
      ctx_.submit(p);
      double ms = 0;
      for (const DispatchTiming& t : p.timings()) ms += t.ms;
      if (r > 0) runs.push_back(ms);
    }
    double ms = median(runs);
    auto rate = [&](double amount) {
      char s[32] = "-";
      if (amount > 0) std::snprintf(s, sizeof s, "%.1f", amount / (ms * 1e-3) / 1e9);
      return std::string(s);
    };
    std::printf("%-22s %-4s %10.3f %10s %10s\n", op, pass, ms, rate(flop).c_str(), rate(bytes).c_str());
    std::fflush(stdout);
  }

 private:
  Context& ctx_;
  int repeats_;
};

double bytes_of(std::initializer_list<Tensor> ts) {
  double b = 0;
  for (const Tensor& t : ts) b += double(t.bytes());
  return b;
}


int bench_ops(const Common& c, const BenchOpsOptions& o) {
  Context ctx(ContextOptions{c.device});
  if (!ctx.timestamp_bits()) {
    std::fprintf(stderr, "bench ops: device '%s' has no timestamps on its compute queue\n", ctx.info().name.c_str());
    return 1;
  }
  const DType act = o.dtype == "f16" ? DType::f16 : DType::f32;
  const int64_t B = o.batch, T = o.seq, BT = B * T, C = kHidden, F = kFfn, V = kVocab;
  const int64_t Hq = kHeads, Hkv = kKvHeads, D = kHeadDim, QKV = (Hq + 2 * Hkv) * D;
  std::printf("ops of one MiniMind2-small layer and step: batch %lld x seq %lld, hidden %lld, heads %lld/%lld, "
              "ffn %lld, vocab %lld, %.1fM parameters; %s activations on %s\n",
              (long long)B, (long long)T, (long long)C, (long long)Hq, (long long)Hkv, (long long)F, (long long)V,
              double(kParams) / 1e6, o.dtype.c_str(), ctx.info().name.c_str());
  std::printf("GPU timestamps, median of %d runs after a warm-up; rates count useful FLOPs and tensor bytes\n",
              o.repeats);

  Arena arena(ctx, "bench", MemoryKind::device, 512ull << 20);
  auto tensor = [&](DType t, Shape s, float scale = 0.5f) {
    Tensor x = arena.alloc(t, std::move(s));
    write_values(ctx, x, random_values(size_t(x.numel()), uint32_t(arena.used()), t, scale));
    return x;
  };
  std::vector<int32_t> id_values(BT);
  for (int64_t i = 0; i < BT; ++i) id_values[i] = int32_t((i * 7919) % V);
  Tensor ids = arena.alloc(DType::i32, {B, T});
  ctx.write(ids, id_values);
  Tensor mask = arena.alloc(DType::f32, {B, T});
  ctx.write(mask, std::vector<float>(BT, 1.0f));
  Tensor one = arena.alloc(DType::f32, {1});
  ctx.write(one, std::vector<float>{1.0f});

  Tensor table = tensor(DType::f32, {V, C}), dtable = tensor(DType::f32, {V, C});
  Tensor x = tensor(act, {B, T, C}), y = tensor(act, {B, T, C}), dx = tensor(act, {B, T, C}), dy = tensor(act, {B, T, C});
  Tensor w = tensor(DType::f32, {C}), dw = tensor(DType::f32, {C}), rstd = tensor(DType::f32, {BT});
  Tensor norm_scratch = arena.alloc(DType::f32, {ops::rmsnorm_backward_scratch_elems(BT, C)});
  Tensor q = tensor(act, {B, T, Hq, D}), k = tensor(act, {B, T, Hkv, D}), v = tensor(act, {B, T, Hkv, D});
  Tensor att = tensor(act, {B, T, Hq, D}), datt = tensor(act, {B, T, Hq, D}), lse = tensor(DType::f32, {B, Hq, T});
  Tensor dq = tensor(act, {B, T, Hq, D}), dk = tensor(act, {B, T, Hkv, D}), dv = tensor(act, {B, T, Hkv, D});
  Tensor att_scratch = arena.alloc(DType::f32, {ops::attention_backward_scratch_elems(q)});
  Tensor rope_tab = arena.alloc(DType::f32, {T, D / 2, 2});
  ctx.write(rope_tab, ops::rope_table(T, D));
  Tensor gate_up = tensor(act, {B, T, 2 * F}), dgate_up = tensor(act, {B, T, 2 * F});
  Tensor h = tensor(act, {B, T, F}), dh = tensor(act, {B, T, F});
  Tensor logits = tensor(act, {B, T, V}, 4.0f);
  Tensor loss = arena.alloc(DType::f32, {1});
  Tensor ce_scratch = arena.alloc(DType::f32, {ops::cross_entropy_scratch_elems(BT)});
  Tensor params = tensor(DType::f32, {kParams}, 0.02f), grads = tensor(DType::f32, {kParams}, 1e-3f);
  Tensor m = tensor(DType::f32, {kParams}, 1e-4f), vv = tensor(DType::f32, {kParams}, 1e-4f);
  Tensor params_half = act == DType::f16 ? arena.alloc(DType::f16, {kParams}) : Tensor{};
  Tensor stats = arena.alloc(DType::f32, {ops::kGradStatsElems});
  Tensor gn_scratch = arena.alloc(DType::f32, {ops::grad_norm_scratch_elems(ctx, kParams)});
  Arena host(ctx, "bench step", MemoryKind::host, 1 << 16);
  Tensor step = host.alloc(DType::f32, {ops::kAdamWStepElems});
  ops::write_adamw_step(step, {1e-4f, 1});

  // Weights in the activations' dtype, as the mixed path multiplies its f16 working copy.
  struct Linear {
    const char* name;
    int64_t n, k;
  };
  const Linear linears[] = {{"linear qkv", QKV, C}, {"linear o", C, C}, {"linear gate+up", 2 * F, C},
                            {"linear down", C, F},  {"linear head", V, C}};

  Bench bench(ctx, o.repeats);
  const double bt = double(BT);
  bench("embedding", "fwd", [&](Program& p) { ops::embedding(p, table, ids, x); }, 0,
        bytes_of({ids, x}) + bytes_of({x}) / double(dtype_size(act)) * 4);
  bench("embedding", "bwd", [&](Program& p) { ops::embedding_backward(p, ids, dy, dtable); }, 0,
        bytes_of({ids, dy, dtable, dtable}));
  bench("rmsnorm", "fwd", [&](Program& p) { ops::rmsnorm(p, x, w, y, rstd); }, 0, bytes_of({x, y, rstd}));
  bench("rmsnorm", "bwd",
        [&](Program& p) { ops::rmsnorm_backward(p, dy, x, w, rstd, dx, dw, norm_scratch, true); }, 0,
        bytes_of({dy, x, dx, rstd}));
  for (const Linear& l : linears) {
    Tensor in = tensor(act, {B, T, l.k}), out = tensor(act, {B, T, l.n});
    Tensor wt = tensor(act, {l.n, l.k}), dwt = tensor(act == DType::f16 ? DType::f32 : act, {l.n, l.k});
    double flop = 2 * bt * double(l.n) * double(l.k);
    bench(l.name, "fwd", [&](Program& p) { ops::linear(p, in, wt, out); }, flop, bytes_of({in, wt, out}));
    bench(l.name, "bwd", [&](Program& p) {
      ops::linear_backward_input(p, out, wt, in);
      ops::linear_backward_weight(p, out, in, dwt);
    }, 2 * flop, bytes_of({in, wt, out, in, out, dwt, dwt}));
  }
  bench("rope q+k", "fwd", [&](Program& p) {
    ops::rope(p, q, q, rope_tab);
    ops::rope(p, k, k, rope_tab);
  }, 0, 2 * bytes_of({q, k}));
  bench("rope q+k", "bwd", [&](Program& p) {
    ops::rope_backward(p, dq, dq, rope_tab);
    ops::rope_backward(p, dk, dk, rope_tab);
  }, 0, 2 * bytes_of({dq, dk}));
  // Causal: half of the T x T scores; forward q·kᵀ and p·v, backward five products of that size. The name says
  // whether its products run on tensor cores.
  const double att_flop = double(B * Hq) * double(T) * double(T) * double(D);
  const ops::MatmulChoice att_path = ops::choose_attention_path(ctx.info(), act, D, ctx.allows_cooperative_matrix());
  const char* att_name = att_path.path == ops::MatmulPath::cooperative ? "attention (coopmat)" : "attention";
  bench(att_name, "fwd", [&](Program& p) { ops::attention(p, q, k, v, att, lse); }, 2 * att_flop,
        bytes_of({q, k, v, att, lse}));
  bench(att_name, "bwd",
        [&](Program& p) { ops::attention_backward(p, q, k, v, att, lse, datt, dq, dk, dv, att_scratch); },
        5 * att_flop, bytes_of({q, k, v, att, lse, datt, dq, dk, dv}));
  bench("swiglu", "fwd", [&](Program& p) { ops::swiglu_fused(p, gate_up, h); }, 0, bytes_of({gate_up, h}));
  bench("swiglu", "bwd", [&](Program& p) { ops::swiglu_fused_backward(p, gate_up, dh, dgate_up); }, 0,
        bytes_of({gate_up, dh, dgate_up}));
  bench("residual add", "fwd", [&](Program& p) { ops::add(p, x, y, x); }, 0, bytes_of({x, y, x}));
  bench("cross-entropy", "f+b", [&](Program& p) { ops::cross_entropy(p, logits, ids, mask, one, loss, ce_scratch); },
        0, 2 * bytes_of({logits}) + bytes_of({logits}));
  bench("grad norm", "step", [&](Program& p) { ops::grad_norm(p, grads, 1.0f, stats, gn_scratch); }, 0,
        bytes_of({grads}));
  bench("adamw", "step",
        [&](Program& p) { ops::adamw(p, {0.9f, 0.95f, 1e-8f, 0.01f}, params, grads, m, vv, step, stats, params_half); },
        0, bytes_of({params, params, grads, m, m, vv, vv}) + (params_half ? bytes_of({params_half}) : 0));
  return 0;
}

}  // namespace

void add_bench_ops(CLI::App& bench, const Common& common, int& exit_code) {
  auto o = std::make_shared<BenchOpsOptions>();
  CLI::App* sub = bench.add_subcommand("ops", "Every op forward and backward at MiniMind2-small sizes");
  sub->add_option("--batch", o->batch, "Sequences per batch")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--seq", o->seq, "Tokens per sequence")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--repeats", o->repeats, "Timed runs per op")->check(CLI::PositiveNumber);
  sub->add_option("--dtype", o->dtype, "Activations (master weights and optimizer state stay f32)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  on_run(sub, exit_code, [&common, o] { return bench_ops(common, *o); });
}

}  // namespace vkm::tools
