#!/usr/bin/env python3
"""A reference forward pass of the Qwen2, Qwen3 and Llama (3.x) decoders, written from the
published equations (transformers' models and Meta's Llama 3.1 RoPE scaling) in plain torch (no
transformers, no code shared with the C++ implementation). It is the test oracle for
rl/model/decoder.cpp.

Run with Debian's python3 (python3-torch):
  /usr/bin/python3 tests/oracle/decoder_reference.py --model DIR --input in.json --output out.safetensors

DIR holds config.json and model.safetensors (or model.safetensors.index.json and its shards).
--adapter ADIR adds a LoRA adapter saved in PEFT's layout (adapter_config.json,
adapter_model.safetensors with "base_model.model.<module>.lora_A.weight" / "lora_B.weight"):
each adapted weight becomes W + scale * B @ A, scale = lora_alpha / r (lora_alpha / sqrt(r) with
use_rslora), which is what PEFT's LoRA layer computes and merges.
in.json is {"input_ids": [[...], ...], "attention_mask": [[1/0 ...]] (optional),
"position_ids": [[...]] (optional; default: the number of real tokens before each slot, as
transformers' generate() derives it for left padding)}. The output is a safetensors file with one
F32 tensor "logits" [B, T, V]. Exit code 77 means torch is not importable (the caller skips).
"""
import argparse
import json
import math
import os
import struct
import sys

try:
    import torch
except ImportError:
    print("decoder_reference.py: SKIP: this python has no torch (install python3-torch)", file=sys.stderr)
    sys.exit(77)

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


# ----------------------------------------------------------------------------------------------
# safetensors, read with struct + json + torch.frombuffer


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        raw = bytearray(data[base + begin : base + end])
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors


def read_checkpoint(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(model_dir, "model.safetensors.index.json")) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(model_dir, shard)))
    return tensors


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


# ----------------------------------------------------------------------------------------------
# The model: the architectures' equations, one function each


def rms_norm(x, weight, eps):
    # Statistics in float32, cast back to the input dtype, then scaled by the weight.
    x32 = x.to(torch.float32)
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


def llama3_scaled(inv_freq, scaling):
    # Meta's Llama 3.1 rule, frequency by frequency: keep the short wavelengths, divide the long
    # ones by the factor, blend linearly in between.
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    original = scaling["original_max_position_embeddings"]
    out = []
    for freq in inv_freq.tolist():
        wavelength = 2 * math.pi / freq
        if wavelength < original / high:
            out.append(freq)
        elif wavelength > original / low:
            out.append(freq / factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            out.append((1 - smooth) * freq / factor + smooth * freq)
    return torch.tensor(out, dtype=torch.float32)


def rotary_cos_sin(position_ids, cfg, dtype):
    # inv_freq_i = theta^(-2i/d); angle = position * inv_freq; both halves share the angles.
    head_dim, theta = cfg["head_dim"], cfg["rope_theta"]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if cfg["llama3"] is not None:
        inv_freq = llama3_scaled(inv_freq, cfg["llama3"])
    angles = position_ids.float()[:, :, None] * inv_freq[None, None, :]  # [B, T, d/2]
    emb = torch.cat((angles, angles), dim=-1)  # [B, T, d]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    first, second = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    return torch.cat((-second, first), dim=-1)


def attention(x, w, prefix, cfg, cos, sin, additive_mask):
    bsz, seq, _ = x.shape
    n_heads, n_kv, head_dim = cfg["heads"], cfg["kv_heads"], cfg["head_dim"]

    def proj(name, inputs, bias):
        b = w[prefix + name + ".bias"] if bias else None
        return torch.nn.functional.linear(inputs, w[prefix + name + ".weight"], b)

    q = proj("q_proj", x, cfg["qkv_bias"]).view(bsz, seq, n_heads, head_dim)
    k = proj("k_proj", x, cfg["qkv_bias"]).view(bsz, seq, n_kv, head_dim)
    v = proj("v_proj", x, cfg["qkv_bias"]).view(bsz, seq, n_kv, head_dim)
    if cfg["qk_norm"]:  # Qwen3: every head normalised over head_dim, before the rotation
        q = rms_norm(q, w[prefix + "q_norm.weight"], cfg["eps"])
        k = rms_norm(k, w[prefix + "k_norm.weight"], cfg["eps"])
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, T, d]
    cos, sin = cos[:, None], sin[:, None]  # [B, 1, T, d]
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    # Each key/value head serves n_heads / n_kv consecutive query heads.
    k = torch.repeat_interleave(k, n_heads // n_kv, dim=1)
    v = torch.repeat_interleave(v, n_heads // n_kv, dim=1)
    scores = torch.matmul(q, k.transpose(2, 3)) * (head_dim ** -0.5) + additive_mask
    # Softmax in float32 (float64 when the whole oracle runs in float64).
    probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(q.dtype, torch.float32)).to(q.dtype)
    out = torch.matmul(probs, v).transpose(1, 2).reshape(bsz, seq, n_heads * head_dim)
    return proj("o_proj", out, cfg["o_bias"])


def mlp(x, w, prefix, bias):
    def proj(name, inputs):
        return torch.nn.functional.linear(inputs, w[prefix + name + ".weight"],
                                          w[prefix + name + ".bias"] if bias else None)

    return proj("down_proj", torch.nn.functional.silu(proj("gate_proj", x)) * proj("up_proj", x))


def forward(w, cfg, input_ids, attention_mask, position_ids, dtype):
    bsz, seq = input_ids.shape
    x = w["model.embed_tokens.weight"][input_ids]  # [B, T, C]
    cos, sin = rotary_cos_sin(position_ids, cfg, dtype)
    # Additive mask [B, 1, T, T]: 0 where allowed (causal and a real key), dtype-min elsewhere.
    causal = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
    allowed = causal[None, None] & attention_mask.bool()[:, None, None, :]
    additive = torch.zeros(bsz, 1, seq, seq, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    for layer in range(cfg["layers"]):
        p = "model.layers.%d." % layer
        x = x + attention(rms_norm(x, w[p + "input_layernorm.weight"], cfg["eps"]), w, p + "self_attn.",
                          cfg, cos, sin, additive)
        x = x + mlp(rms_norm(x, w[p + "post_attention_layernorm.weight"], cfg["eps"]), w, p + "mlp.",
                    cfg["mlp_bias"])
    x = rms_norm(x, w["model.norm.weight"], cfg["eps"])
    head = w["model.embed_tokens.weight"] if cfg["tied"] else w["lm_head.weight"]
    return torch.nn.functional.linear(x, head).float()  # [B, T, V]


def read_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    kind = c["model_type"]
    assert kind in ("qwen2", "qwen3", "llama"), kind
    theta = c.get("rope_theta")
    if theta is None:
        theta = c.get("rope_parameters", {}).get("rope_theta", 10000.0)
    scaling = c.get("rope_scaling") or c.get("rope_parameters") or {}
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    assert rope_type in ("default", "llama3"), rope_type
    heads = c["num_attention_heads"]
    attention_bias = c.get("attention_bias", False)
    return {
        "qkv_bias": kind == "qwen2" or attention_bias,
        "o_bias": kind != "qwen2" and attention_bias,
        "mlp_bias": kind == "llama" and c.get("mlp_bias", False),
        "qk_norm": kind == "qwen3",
        "llama3": scaling if rope_type == "llama3" else None,
        "layers": c["num_hidden_layers"],
        "heads": heads,
        "kv_heads": c.get("num_key_value_heads") or heads,
        "head_dim": c.get("head_dim") or c["hidden_size"] // heads,
        "eps": c.get("rms_norm_eps", 1e-6),
        "rope_theta": float(theta),
        "tied": c.get("tie_word_embeddings", False),
    }


def apply_lora(weights, adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    assert acfg["peft_type"] == "LORA", acfg["peft_type"]
    r = acfg["r"]
    scale = acfg["lora_alpha"] / (math.sqrt(r) if acfg.get("use_rslora") else r)
    adapter = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    prefix, suffix = "base_model.model.", ".lora_A.weight"
    merged = 0
    for name, a in adapter.items():
        if not name.endswith(suffix):
            continue
        module = name[len(prefix) : -len(suffix)]
        b = adapter[prefix + module + ".lora_B.weight"]
        w = weights[module + ".weight"]
        weights[module + ".weight"] = (w.double() + scale * (b.double() @ a.double())).to(w.dtype)
        merged += 1
    assert merged == len(adapter) // 2, "unpaired lora_A/lora_B tensors"
    return merged


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float64"])
    ap.add_argument("--adapter", help="a LoRA adapter directory in PEFT's layout")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    torch.set_num_threads(1)

    cfg = read_config(args.model)
    weights = read_checkpoint(args.model)
    if args.adapter:
        apply_lora(weights, args.adapter)
    weights = {k: v.to(dtype) for k, v in weights.items()}
    with open(args.input) as f:
        request = json.load(f)
    input_ids = torch.tensor(request["input_ids"], dtype=torch.int64)
    mask = torch.tensor(request.get("attention_mask", [[1] * input_ids.shape[1]] * input_ids.shape[0]))
    if "position_ids" in request:
        position_ids = torch.tensor(request["position_ids"], dtype=torch.int64)
    else:
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = forward(weights, cfg, input_ids, mask, position_ids, dtype)
    write_safetensors(args.output, {"logits": logits})
    print("decoder_reference.py: logits %s, mean |logit| %.4f" % (list(logits.shape), logits.abs().mean().item()))


if __name__ == "__main__":
    main()
