#!/usr/bin/env python3
"""An independent LLaMA forward in PyTorch (float64) for tests/io/torch_check_test.cpp.

Reads a Hugging Face LlamaForCausalLM folder (config.json, model.safetensors) with its own few-line
safetensors reader, runs the token ids of IDS_JSON ({"ids": [[...], ...]}) and writes the log-softmax of the
logits, flattened [B, T, V], as a JSON list to OUT_JSON. Written from the LLaMA architecture as transformers
implements it (RMSNorm, rotate_half rotary embedding, grouped-query causal attention, SwiGLU), not from vkmind.

usage: llama_forward.py MODEL_DIR IDS_JSON OUT_JSON
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    assert header.get("__metadata__", {}).get("format") == "pt", "transformers needs metadata format=pt"
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = bytearray(data[8 + n + begin : 8 + n + end])
        tensors[name] = torch.frombuffer(raw, dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).double()
    return tensors


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def forward(cfg, w, ids):
    B, T = ids.shape
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    D, eps = C // H, cfg["rms_norm_eps"]
    inv_freq = 1.0 / cfg["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D)
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    cos, sin = angles.cos(), angles.sin()
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)

    x = w["model.embed_tokens.weight"][ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(B, T, Hkv, D).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(B, T, Hkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(D) + causal
        attn = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (F.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    model_dir, ids_path, out_path = sys.argv[1:4]
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama"
    weights = read_safetensors(f"{model_dir}/model.safetensors")
    with open(ids_path) as f:
        ids = torch.tensor(json.load(f)["ids"], dtype=torch.long)
    with torch.no_grad():
        log_probs = forward(cfg, weights, ids).log_softmax(dim=-1)
    with open(out_path, "w") as f:
        json.dump(log_probs.flatten().tolist(), f)


if __name__ == "__main__":
    main()
