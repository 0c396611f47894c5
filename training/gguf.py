"""Writes llama.cpp's GGUF (v3) for the world's Llama models and their LoRA
adapters, from the Hugging Face / PEFT files, in plain Python.

Conventions that matter (llama.cpp's HF converter does the same):
- dims are stored innermost first: a PyTorch [out, in] weight has ne = [in, out];
- q_proj and k_proj rows are permuted from HF's rotate_half layout into the
  interleaved pairs llama.cpp's RoPE uses; a LoRA's B for q/k gets the same
  row permutation (A is untouched);
- tokenizer: "gpt2" BPE with pre-tokenizer "gpt-2", byte-level token strings,
  merges as "left right", specials marked as control tokens.
"""
import json
import struct
from typing import Dict, List, Tuple

import numpy as np
import torch

import safetensors_io as st

ALIGN = 32
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_F16 = 0, 1

NAME_MAP = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def _s(x: str) -> bytes:
    b = x.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, value) -> bytes:
    out = _s(key) + struct.pack("<I", vtype)
    if vtype == T_STR:
        return out + _s(value)
    if vtype == T_U32:
        return out + struct.pack("<I", value)
    if vtype == T_F32:
        return out + struct.pack("<f", value)
    if vtype == T_BOOL:
        return out + struct.pack("<?", value)
    raise ValueError(vtype)


def _arr(key: str, etype: int, values) -> bytes:
    out = _s(key) + struct.pack("<I", T_ARR) + struct.pack("<IQ", etype, len(values))
    if etype == T_STR:
        return out + b"".join(_s(v) for v in values)
    if etype == T_I32:
        return out + struct.pack(f"<{len(values)}i", *values)
    raise ValueError(etype)


def permute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """HF rotate_half row order -> llama.cpp's interleaved order, per head."""
    out = w.shape[0]
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def write_gguf(path: str, kvs: List[bytes], tensors: List[Tuple[str, torch.Tensor, int]]) -> None:
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, blobs, off = b"", [], 0
    for name, t, gtype in tensors:
        arr = t.detach().float().numpy().astype("<f4" if gtype == GGML_F32 else "<f2")
        shape = list(reversed(arr.shape))
        infos += _s(name) + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<IQ", gtype, off)
        raw = arr.tobytes()
        pad = (-len(raw)) % ALIGN
        blobs.append(raw + b"\0" * pad)
        off += len(raw) + pad
    head = header + infos
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


def _gguf_name(hf: str) -> str:
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<module>.<proj>.weight
    i = parts[2]
    mod = ".".join(parts[3:-1])
    return f"blk.{i}.{NAME_MAP[mod]}.weight"


def _tokenizer_kvs(model_dir: str, cfg: dict) -> List[bytes]:
    tok = json.load(open(f"{model_dir}/tokenizer.json", encoding="utf-8"))
    tcfg = json.load(open(f"{model_dir}/tokenizer_config.json", encoding="utf-8"))
    vocab = tok["model"]["vocab"]
    tokens = [None] * len(vocab)
    for s, i in vocab.items():
        tokens[i] = s
    specials = {a["content"] for a in tok["added_tokens"] if a["special"]}
    types = [3 if t in specials else 1 for t in tokens]
    merges = [f"{a} {b}" for a, b in tok["model"]["merges"]]
    pad = vocab.get(tcfg.get("pad_token") or "", None)
    kvs = [_kv("tokenizer.ggml.model", T_STR, "gpt2"), _kv("tokenizer.ggml.pre", T_STR, "gpt-2"),
           _arr("tokenizer.ggml.tokens", T_STR, tokens), _arr("tokenizer.ggml.token_type", T_I32, types),
           _arr("tokenizer.ggml.merges", T_STR, merges),
           _kv("tokenizer.ggml.bos_token_id", T_U32, cfg["bos_token_id"]),
           _kv("tokenizer.ggml.eos_token_id", T_U32, cfg["eos_token_id"]),
           _kv("tokenizer.ggml.add_bos_token", T_BOOL, False), _kv("tokenizer.ggml.add_eos_token", T_BOOL, False),
           _kv("tokenizer.chat_template", T_STR, tcfg["chat_template"])]
    if pad is not None:
        kvs.append(_kv("tokenizer.ggml.padding_token_id", T_U32, pad))
    return kvs


def export_model(model_dir: str, out_path: str, name: str, gtype: int = GGML_F16) -> None:
    cfg = json.load(open(f"{model_dir}/config.json"))
    if cfg["architectures"][0] != "LlamaForCausalLM":
        raise ValueError("only Llama models are exported to GGUF here")
    sd = st.load(f"{model_dir}/model.safetensors")
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    kvs = [_kv("general.architecture", T_STR, "llama"), _kv("general.name", T_STR, name),
           _kv("general.file_type", T_U32, 0 if gtype == GGML_F32 else 1),
           _kv("llama.context_length", T_U32, cfg["max_position_embeddings"]),
           _kv("llama.embedding_length", T_U32, cfg["hidden_size"]),
           _kv("llama.block_count", T_U32, cfg["num_hidden_layers"]),
           _kv("llama.feed_forward_length", T_U32, cfg["intermediate_size"]),
           _kv("llama.attention.head_count", T_U32, nh), _kv("llama.attention.head_count_kv", T_U32, nkv),
           _kv("llama.rope.freq_base", T_F32, float(cfg["rope_theta"])),
           _kv("llama.rope.dimension_count", T_U32, cfg["hidden_size"] // nh),
           _kv("llama.attention.layer_norm_rms_epsilon", T_F32, float(cfg["rms_norm_eps"])),
           _kv("llama.vocab_size", T_U32, cfg["vocab_size"])] + _tokenizer_kvs(model_dir, cfg)
    tensors = []
    for hf in sorted(sd):
        t = sd[hf].float()
        if hf.endswith("q_proj.weight"):
            t = permute_rows(t, nh)
        elif hf.endswith("k_proj.weight"):
            t = permute_rows(t, nkv)
        is_norm = t.dim() == 1
        tensors.append((_gguf_name(hf), t, GGML_F32 if is_norm else gtype))
    write_gguf(out_path, kvs, tensors)


def export_lora(adapter_dir: str, base_config: dict, out_path: str, gtype: int = GGML_F16) -> None:
    acfg = json.load(open(f"{adapter_dir}/adapter_config.json"))
    sd = st.load(f"{adapter_dir}/adapter_model.safetensors")
    nh, nkv = base_config["num_attention_heads"], base_config["num_key_value_heads"]
    kvs = [_kv("general.architecture", T_STR, "llama"), _kv("general.type", T_STR, "adapter"),
           _kv("adapter.type", T_STR, "lora"), _kv("adapter.lora.alpha", T_F32, float(acfg["lora_alpha"]))]
    tensors = []
    for key in sorted(sd):
        # base_model.model.model.layers.N.<module>.<proj>.lora_A.weight
        hf = key[len("base_model.model."):].replace(".lora_A.weight", ".weight").replace(".lora_B.weight", ".weight")
        t = sd[key].float()
        is_b = ".lora_B." in key
        if is_b and hf.endswith("q_proj.weight"):
            t = permute_rows(t, nh)
        elif is_b and hf.endswith("k_proj.weight"):
            t = permute_rows(t, nkv)
        tensors.append((_gguf_name(hf) + (".lora_b" if is_b else ".lora_a"), t, gtype))
    write_gguf(out_path, kvs, tensors)


if __name__ == "__main__":
    # python3 training/gguf.py MODEL_DIR OUT.gguf: a model folder to GGUF (f16), e.g. the
    # device model for the engine benchmark's llama.cpp peer (not committed: size).
    import sys
    export_model(sys.argv[1], sys.argv[2], "crayon-" + sys.argv[1].rstrip("/").split("/")[-1], GGML_F16)
