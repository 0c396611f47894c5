"""The reference PyTorch model: Llama (RMSNorm, RoPE, SwiGLU, grouped-query
attention; tied or untied head) and Qwen2 (the same with q/k/v biases), with
HF tensor names, and LoRA that can hold several adapters at once and blend
them as the exact delta blend  sum_i w_i s_i B_i A_i  or the LoraHub-style
factor blend  s (sum_i w_i B_i)(sum_i w_i A_i).
"""
import math
from dataclasses import dataclass, asdict
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Config:
    vocab_size: int
    hidden_size: int          # dim
    intermediate_size: int    # hidden dim of the MLP
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 256
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = True
    attention_bias: bool = False  # Qwen2: q/k/v have biases
    architecture: str = "LlamaForCausalLM"
    bos_token_id: int = 0
    eos_token_id: int = 1

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def hf_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("architecture", "attention_bias")}
        d.update(architectures=[self.architecture], hidden_act="silu", torch_dtype="float32",
                 model_type="qwen2" if self.architecture == "Qwen2ForCausalLM" else "llama",
                 initializer_range=0.02, use_cache=True, head_dim=self.head_dim)
        if self.architecture == "LlamaForCausalLM":
            d.update(attention_bias=False, mlp_bias=False, pretraining_tp=1, rope_scaling=None)
        else:
            d.update(use_sliding_window=False, sliding_window=None, max_window_layers=self.num_hidden_layers)
        return d

    @staticmethod
    def from_hf(d: dict) -> "Config":
        arch = d["architectures"][0]
        return Config(vocab_size=d["vocab_size"], hidden_size=d["hidden_size"], intermediate_size=d["intermediate_size"],
                      num_hidden_layers=d["num_hidden_layers"], num_attention_heads=d["num_attention_heads"],
                      num_key_value_heads=d["num_key_value_heads"], max_position_embeddings=d["max_position_embeddings"],
                      rope_theta=d["rope_theta"], rms_norm_eps=d["rms_norm_eps"], tie_word_embeddings=d["tie_word_embeddings"],
                      attention_bias=arch == "Qwen2ForCausalLM", architecture=arch,
                      bos_token_id=d.get("bos_token_id", 0), eos_token_id=d.get("eos_token_id", 1))


class LoraLinear(nn.Module):
    """y = W x (+ b) + LoRA terms. Adapters live in `self.lora_A[name]` [r, in] and
    `self.lora_B[name]` [out, r]; `self.blend` says which apply and how."""

    def __init__(self, n_in: int, n_out: int, bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))  # [out, in]
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        self.lora_A = nn.ParameterDict()
        self.lora_B = nn.ParameterDict()
        self.scale: Dict[str, float] = {}
        self.blend: Optional[dict] = None  # {"mode": "delta"|"factor", "weights": {name: w}}

    def add_adapter(self, name: str, r: int, scale: float, init: str = "peft") -> None:
        n_out, n_in = self.weight.shape
        a = torch.empty(r, n_in)
        nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        b = torch.zeros(n_out, r) if init == "peft" else torch.randn(n_out, r) * 0.02
        self.lora_A[name] = nn.Parameter(a)
        self.lora_B[name] = nn.Parameter(b)
        self.scale[name] = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        if not self.blend:
            return y
        ws = {k: w for k, w in self.blend["weights"].items() if k in self.lora_A and w != 0.0}
        if not ws:
            return y
        if self.blend["mode"] == "delta":
            for k, w in ws.items():
                y = y + (w * self.scale[k]) * F.linear(F.linear(x, self.lora_A[k]), self.lora_B[k])
            return y
        # factor blend: one adapter from the weighted sums of the factors (all share r and scale)
        a = sum(w * self.lora_A[k] for k, w in ws.items())
        b = sum(w * self.lora_B[k] for k, w in ws.items())
        s = self.scale[next(iter(ws))]
        return y + s * F.linear(F.linear(x, a), b)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(cfg: Config, seq_len: int):
    """cos/sin [seq, head_dim] in HF's rotate_half layout (pairs i and i + head_dim/2)."""
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    f = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.cfg = cfg
        self.q_proj = LoraLinear(d, cfg.num_attention_heads * hd, cfg.attention_bias)
        self.k_proj = LoraLinear(d, cfg.num_key_value_heads * hd, cfg.attention_bias)
        self.v_proj = LoraLinear(d, cfg.num_key_value_heads * hd, cfg.attention_bias)
        self.o_proj = LoraLinear(cfg.num_attention_heads * hd, d, False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        c = self.cfg
        q = self.q_proj(x).view(B, T, c.num_attention_heads, c.head_dim).transpose(1, 2)   # [B, H, T, hd]
        k = self.k_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)   # [B, KV, T, hd]
        v = self.v_proj(x).view(B, T, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.num_attention_heads // c.num_key_value_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim) + mask                    # [B, H, T, T]
        y = att.softmax(-1) @ v                                                              # [B, H, T, hd]
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.gate_proj = LoraLinear(cfg.hidden_size, cfg.intermediate_size, False)
        self.up_proj = LoraLinear(cfg.hidden_size, cfg.intermediate_size, False)
        self.down_proj = LoraLinear(cfg.intermediate_size, cfg.hidden_size, False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class CausalLM(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.model = Inner(cfg)
        self.lm_head = None if cfg.tie_word_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        for n, p in self.named_parameters():
            if "lora_" in n:
                continue
            if n.endswith("layernorm.weight") or n.endswith("norm.weight"):
                nn.init.ones_(p)
            elif n.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.normal_(p, std=0.02)
        for n, p in self.named_parameters():  # residual projections scaled down (GPT-2 style)
            if n.endswith("o_proj.weight") or n.endswith("down_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * self.cfg.num_hidden_layers))

    def linears(self):
        """(layer index, target name, LoraLinear) for every LoRA-able projection."""
        for i, layer in enumerate(self.model.layers):
            for t in TARGETS:
                parent = layer.self_attn if t.endswith("_proj") and t[0] in "qkvo" else layer.mlp
                yield i, t, getattr(parent, t)

    def set_blend(self, blend: Optional[dict]) -> None:
        for _, _, lin in self.linears():
            lin.blend = blend

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, T] -> logits [B, T, vocab]. Batches are right-padded: with the causal
        mask no real token ever attends to the padding after it."""
        B, T = ids.shape
        cos, sin = rope_tables(self.cfg, T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(x, head)

    @torch.no_grad()
    def query_feature(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Crayon's embedding: mean over each sequence's real tokens of layer 0's
        q_proj(input_layernorm(embed(x))) (bias included, before RoPE, without adapters).
        ids [B, T] right-padded, lengths [B] -> [B, n_heads * head_dim]."""
        layer = self.model.layers[0]
        h = layer.input_layernorm(self.model.embed_tokens(ids))
        q = F.linear(h, layer.self_attn.q_proj.weight, layer.self_attn.q_proj.bias)   # [B, T, q_dim]
        keep = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).float()[..., None]
        return (q * keep).sum(1) / lengths[:, None].float()

    def n_params(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if "lora_" not in n)


def base_state_dict(model: CausalLM) -> Dict[str, torch.Tensor]:
    """HF tensor names, without LoRA parameters."""
    return {n: p.detach() for n, p in model.state_dict().items() if "lora_" not in n}


def load_base_state(model: CausalLM, sd: Dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if "lora_" not in m]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")


def peft_state_dict(model: CausalLM, name: str) -> Dict[str, torch.Tensor]:
    """One adapter under PEFT's key names."""
    out = {}
    for i, t, lin in model.linears():
        if name in lin.lora_A:
            part = "self_attn" if t[0] in "qkvo" else "mlp"
            key = f"base_model.model.model.layers.{i}.{part}.{t}"
            out[f"{key}.lora_A.weight"] = lin.lora_A[name].detach().clone()
            out[f"{key}.lora_B.weight"] = lin.lora_B[name].detach().clone()
    return out


def load_peft_state(model: CausalLM, name: str, sd: Dict[str, torch.Tensor], r: int, scale: float) -> None:
    for i, t, lin in model.linears():
        part = "self_attn" if t[0] in "qkvo" else "mlp"
        key = f"base_model.model.model.layers.{i}.{part}.{t}"
        if f"{key}.lora_A.weight" in sd:
            lin.add_adapter(name, r, scale)
            with torch.no_grad():
                lin.lora_A[name].copy_(sd[f"{key}.lora_A.weight"])
                lin.lora_B[name].copy_(sd[f"{key}.lora_B.weight"])


def peft_config(base: str, r: int, alpha: int, targets: List[str]) -> dict:
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base, "r": r,
            "lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": targets, "use_rslora": False,
            "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "modules_to_save": None}
