#!/usr/bin/env python3
"""The PyTorch baseline for `vkmind bench train` and `vkmind bench generate`.

The same MiniMind2 / LLaMA model as vkmind (RMSNorm with weight, rotate_half RoPE, GQA, SwiGLU, tied
embeddings, no biases), in plain torch, measuring
  - training tokens/s of whole optimizer steps (forward, cross-entropy, backward, clip 1.0, AdamW) in eager
    fp32, eager bf16 autocast, and both again under torch.compile;
  - decode tokens/s of a Hugging Face-style greedy loop with a KV cache (prefill, then one token at a time,
    argmax), fp32 and bf16 weights, at each --decode-batch.
Runs on PyTorch 2.x (CUDA or CPU) and on Debian's torch 1.13 (CPU): what a version or device cannot do is
skipped with the reason, in the table and in the JSON.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

PRESETS = {  # hidden, layers, heads, kv_heads, ffn, vocab (model/config.cpp)
    "minimind2-small": (512, 8, 8, 2, 1408, 6400),
    "minimind2": (768, 16, 8, 2, 2048, 6400),
    "tiny": (64, 2, 4, 2, 96, 300),
}


class Config:
    def __init__(self, hidden, layers, heads, kv_heads, ffn, vocab, rope_theta=1e6, eps=1e-5, tied=True):
        self.hidden, self.layers, self.heads, self.kv_heads = hidden, layers, heads, kv_heads
        self.ffn, self.vocab, self.rope_theta, self.eps, self.tied = ffn, vocab, rope_theta, eps, tied
        self.head_dim = hidden // heads

    def parameter_count(self):
        C, kv = self.hidden, self.kv_heads * self.head_dim
        layer = 2 * C * C + 2 * C * kv + 3 * self.ffn * C + 2 * C
        return self.vocab * C * (1 if self.tied else 2) + self.layers * layer + C


def load_config(path):
    """A Hugging Face LLaMA config.json, with transformers' defaults where vkmind uses them."""
    def fail(why):
        sys.exit(f"bench_torch.py: {path}: {why}")
    try:
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
    except OSError as e:
        fail(f"cannot read: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(f"not valid JSON: {e}")
    if not isinstance(j, dict):
        fail("not a JSON object")

    def integer(field, default=None):
        v = j.get(field, default)
        if v is None:
            fail(f"field '{field}' is missing")
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            fail(f"field '{field}' must be a positive integer (is {json.dumps(v)})")
        return v

    def number(field, default):
        v = j.get(field)
        if v is None:
            return default
        if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
            fail(f"field '{field}' must be a positive number (is {json.dumps(v)})")
        return float(v)

    if j.get("model_type", "llama") not in ("llama", "minimind"):
        fail(f"field 'model_type' must be \"llama\", is {json.dumps(j['model_type'])}")
    if j.get("hidden_act", "silu") != "silu":
        fail(f"field 'hidden_act' must be \"silu\", is {json.dumps(j['hidden_act'])}")
    for field in ("attention_bias", "mlp_bias"):
        if j.get(field):
            fail(f"field '{field}': biases are not supported")
    if j.get("rope_scaling") is not None:
        fail("field 'rope_scaling': rope scaling is not supported")
    heads = integer("num_attention_heads")
    c = Config(integer("hidden_size"), integer("num_hidden_layers"), heads, integer("num_key_value_heads", heads),
               integer("intermediate_size"), integer("vocab_size"), number("rope_theta", 1e4),
               number("rms_norm_eps", 1e-6), bool(j.get("tie_word_embeddings", False)))
    if c.hidden % heads or heads % c.kv_heads:
        fail("hidden_size must be a multiple of num_attention_heads, and that of num_key_value_heads")
    return c


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def attention(q, k, v, causal):
    """q [B, H, T, D]; k, v [B, H, S, D] (kv heads already repeated). `causal` is for T == S (training, and a
    prefill into an empty cache); a single decoded query attends to every cached key."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        T, S = q.shape[-2], k.shape[-2]
        mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v


class MiniMind(torch.nn.Module):
    """LlamaForCausalLM without transformers: one module holding every layer's weights in ModuleLists."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        C, kv, n = c.hidden, c.kv_heads * c.head_dim, c.layers

        def linears(out_features, in_features):
            return torch.nn.ModuleList(torch.nn.Linear(in_features, out_features, bias=False) for _ in range(n))

        def norms():
            return torch.nn.ParameterList(torch.nn.Parameter(torch.ones(C)) for _ in range(n))

        self.embed = torch.nn.Embedding(c.vocab, C)
        self.q, self.k, self.v, self.o = linears(C, C), linears(kv, C), linears(kv, C), linears(C, C)
        self.gate, self.up, self.down = linears(c.ffn, C), linears(c.ffn, C), linears(C, c.ffn)
        self.attn_norm, self.mlp_norm = norms(), norms()
        self.final_norm = torch.nn.Parameter(torch.ones(C))
        self.head = None if c.tied else torch.nn.Linear(C, c.vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        inv_freq = 1.0 / c.rope_theta ** (torch.arange(0, c.head_dim, 2, dtype=torch.float32) / c.head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def rmsnorm(self, x, weight):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.c.eps)
        return weight * h.to(x.dtype)

    def forward(self, ids, cache=None):
        """Logits [B, T, V]. With `cache` (a list of per-layer (k, v), empty at first) the new keys and values
        are appended, as Hugging Face's DynamicCache does, and positions continue after the cached ones."""
        c = self.c
        B, T = ids.shape
        start = cache[0][0].shape[2] if cache else 0
        positions = torch.arange(start, start + T, device=ids.device, dtype=torch.float32)
        angles = torch.outer(positions, self.inv_freq.float())  # fp32 angles even when the weights are bf16
        angles = torch.cat((angles, angles), dim=-1)
        x = self.embed(ids)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        for i in range(c.layers):
            h = self.rmsnorm(x, self.attn_norm[i])
            q = self.q[i](h).view(B, T, c.heads, c.head_dim).transpose(1, 2)
            k = self.k[i](h).view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
            v = self.v[i](h).view(B, T, c.kv_heads, c.head_dim).transpose(1, 2)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            if cache is not None:
                if len(cache) > i:
                    k, v = torch.cat((cache[i][0], k), dim=2), torch.cat((cache[i][1], v), dim=2)
                    cache[i] = (k, v)
                else:
                    cache.append((k, v))
            group = c.heads // c.kv_heads
            a = attention(q, k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1), causal=T > 1)
            x = x + self.o[i](a.transpose(1, 2).reshape(B, T, c.hidden))
            h = self.rmsnorm(x, self.mlp_norm[i])
            x = x + self.down[i](F.silu(self.gate[i](h)) * self.up[i](h))
        x = self.rmsnorm(x, self.final_norm)
        return F.linear(x, self.embed.weight if c.tied else self.head.weight)


def loss_of(model, ids, targets):
    logits = model(ids)
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1))


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_adamw(params, device):
    """PyTorch's fastest AdamW for the device: fused where this version has it for the device, else foreach."""
    for kind in ("fused", "foreach"):
        try:
            return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01, **{kind: True}), kind
        except (TypeError, RuntimeError):  # no such argument in this version, or not for this device
            continue
    return torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01), "single-tensor"


def bf16_support(device):
    """None when bf16 autocast works on the device, else why not."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            x = torch.ones(4, 4, device=device)
            (x @ x).sum().item()
    except (RuntimeError, TypeError) as e:
        return f"bf16 autocast unavailable on {device.type}: {e}"
    return None


def median_ms(run, device, warmup, steps):
    """Median wall time of `run()` in ms, after `warmup` untimed calls."""
    for _ in range(warmup):
        run()
    synchronize(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_train(c, device, args, bf16, compiled):
    """Tokens/s of whole optimizer steps at --batch x --seq, or the reason the mode is skipped (a str)."""
    if bf16 and (why := bf16_support(device)):
        return why
    if compiled and not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    torch.manual_seed(1)
    model = MiniMind(c).to(device)
    optimizer, _ = make_adamw(model.parameters(), device)
    forward = torch.compile(model) if compiled else model
    ids = torch.randint(0, c.vocab, (args.batch, args.seq), device=device)
    targets = torch.randint(0, c.vocab, (args.batch, args.seq), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(forward, ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    try:
        ms = median_ms(step, device, args.warmup, args.steps)
    except Exception as e:  # torch.compile fails in many ways (no compiler, unsupported Python): skip the mode
        if not compiled:
            raise
        return f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return args.batch * args.seq / (ms / 1e3)


@torch.no_grad()
def bench_decode(c, device, args, batch, dtype):
    """Decode tokens/s of the greedy loop at `batch`: prefill the prompts, then --new-tokens single-token steps
    (timed as a whole, median of --steps runs); or the reason it is skipped (a str)."""
    if dtype == torch.bfloat16 and (why := bf16_support(device)):
        return why
    torch.manual_seed(1)
    model = MiniMind(c).to(device=device, dtype=dtype).eval()
    prompts = torch.randint(0, c.vocab, (batch, args.prompt_tokens), device=device)

    def generate():
        cache = []
        token = model(prompts, cache)[:, -1].argmax(-1, keepdim=True)
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(args.new_tokens):
            token = model(token, cache)[:, -1].argmax(-1, keepdim=True)
        synchronize(device)
        return time.perf_counter() - t0

    for _ in range(args.warmup):
        generate()
    seconds = statistics.median(generate() for _ in range(args.steps))
    return batch * args.new_tokens / seconds


def positive_ints(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got '{text}'")
    return values


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="minimind2-small", choices=sorted(PRESETS))
    p.add_argument("--config", help="a Hugging Face LLaMA config.json instead of the preset")
    p.add_argument("--batch", type=int, default=8, help="training sequences per step")
    p.add_argument("--seq", type=int, default=512, help="training tokens per sequence")
    p.add_argument("--steps", type=int, default=5, help="timed steps (training) or timed runs (decoding)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps or runs first")
    p.add_argument("--decode-batch", type=positive_ints, default=[1, 8], help="decoding batch sizes, e.g. 1,8")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--new-tokens", type=int, default=16)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-decode", action="store_true")
    p.add_argument("--json", help="write the numbers to this file")
    args = p.parse_args()
    for name in ("batch", "seq", "steps", "prompt_tokens", "new_tokens"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.warmup < 0:
        p.error("--warmup must not be negative")

    c = load_config(args.config) if args.config else Config(*PRESETS[args.preset])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count())
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    optimizer = make_adamw([torch.nn.Parameter(torch.zeros(1, device=device))], device)[1]
    print(f"bench_torch: {args.config or args.preset} ({c.parameter_count()} parameters), torch {torch.__version__} "
          f"on {device_name}; attention: "
          f"{'scaled_dot_product_attention' if hasattr(F, 'scaled_dot_product_attention') else 'manual softmax'}; "
          f"AdamW: {optimizer}", flush=True)

    results = {"torch": torch.__version__, "device": device_name, "model": args.config or args.preset,
               "parameters": c.parameter_count(), "batch": args.batch, "seq": args.seq, "optimizer": optimizer,
               "train_tokens_per_s": {}, "decode_tokens_per_s": {}, "skipped": {}}
    rows = []

    def record(kind, mode, value, unit):
        if isinstance(value, str):
            results["skipped"][f"{kind} {mode}"] = value
            rows.append((kind, mode, "skipped: " + value))
        else:
            results[f"{kind}_tokens_per_s"][mode] = value
            rows.append((kind, mode, f"{value:.1f} {unit}"))
        print(f"  {kind:6} {mode:14} {rows[-1][2]}", flush=True)

    if not args.skip_train:
        for compiled in (False, True):
            for bf16 in (False, True):
                mode = f"{'compile' if compiled else 'eager'} {'bf16' if bf16 else 'fp32'}"
                record("train", mode, bench_train(c, device, args, bf16, compiled), "tokens/s")
    if not args.skip_decode:
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            for batch in args.decode_batch:
                record("decode", f"{name} batch {batch}", bench_decode(c, device, args, batch, dtype), "tokens/s")

    print("\n| measurement | mode | tokens/s |\n|---|---|---:|")
    for kind, mode, text in rows:
        print(f"| {kind} | {mode} | {text} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
