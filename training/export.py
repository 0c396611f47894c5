"""Writes the world's artifacts in the formats real checkpoints use: Hugging Face
model folders (config.json + model.safetensors + tokenizer), PEFT adapters,
pool manifests with indicators, PyTorch parity fixtures, and the manifest."""
import hashlib
import json
import os
import shutil
from typing import Dict, List

import torch

import safetensors_io as st
from model import CausalLM, Config, TARGETS, base_state_dict, load_base_state, peft_config, peft_state_dict
from tokenizer import Tokenizer
import train as T

EMBEDDER = {
    "kind": "first-layer-query-mean",
    "layer": 0,
    "definition": "mean over all tokens of q_proj(input_layernorm(embed_tokens(ids))) of layer 0, bias included, "
                  "before RoPE, with no adapter applied",
    "text": "an example is rendered with the chat template as [user: input, assistant: output] without a "
            "generation prompt (bos included); a bare query as [user: input] with the generation prompt",
}


def save_model(path: str, model: CausalLM, tok: Tokenizer, world: str, dtype=torch.float32) -> None:
    os.makedirs(path, exist_ok=True)
    sd = {k: v.to(dtype) for k, v in base_state_dict(model).items()}
    st.save(f"{path}/model.safetensors", sd, {"format": "pt"})
    cfg = model.cfg.hf_json()
    cfg["torch_dtype"] = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}[dtype]
    with open(f"{path}/config.json", "w") as f:
        json.dump(cfg, f, indent=2)
    with open(f"{path}/generation_config.json", "w") as f:
        json.dump({"bos_token_id": model.cfg.bos_token_id, "eos_token_id": model.cfg.eos_token_id, "do_sample": False}, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{world}/tokenizer/{name}", f"{path}/{name}")


def save_adapter(path: str, model: CausalLM, name: str, base: str, r: int, alpha: int, dtype=torch.float32) -> None:
    os.makedirs(path, exist_ok=True)
    st.save(f"{path}/adapter_model.safetensors", {k: v.to(dtype) for k, v in peft_state_dict(model, name).items()}, {"format": "pt"})
    with open(f"{path}/adapter_config.json", "w") as f:
        json.dump(peft_config(base, r, alpha, TARGETS), f, indent=2)


def save_pool(path: str, model: CausalLM, ids: List[str], centroids: torch.Tensor, clusters, base: str, r: int, alpha: int, dtype=torch.float32) -> None:
    adapters = []
    for j, a in enumerate(ids):
        save_adapter(f"{path}/{a}", model, a, base, r, alpha, dtype)
        adapters.append({"id": a, "path": a, "indicator": [round(float(x), 6) for x in centroids[j]],
                         "clusterSize": len(clusters[j]["members"]), "topTasks": clusters[j]["top_tasks"]})
    manifest = {"id": f"reference-{base}-pool", "baseModel": base, "embedder": EMBEDDER, "n": len(ids),
                "lora": {"r": r, "alpha": alpha, "targetModules": TARGETS}, "adapters": adapters}
    with open(f"{path}/pool.json", "w") as f:
        json.dump(manifest, f, indent=1)


def _floats(t: torch.Tensor) -> List[float]:
    return [float(f"{x:.7g}") for x in t.tolist()]


def _cases(model: CausalLM, prompts: List[List[int]], blends: Dict[str, dict], n_greedy: int) -> list:
    cases = []
    for name, blend in blends.items():
        model.set_blend(blend)
        logits, gen = [], []
        with torch.no_grad():
            for p in prompts:
                logits.append(_floats(model(torch.tensor([p]))[0, -1]))
                gen.append(T.greedy(model, p, n_greedy))
        model.set_blend(None)
        cases.append({"name": name, "blend": blend, "logits": logits, "greedy": gen})
    return cases


def _embeddings(model: CausalLM, prompts: List[List[int]]) -> list:
    return [_floats(model.query_feature(torch.tensor([p]), torch.tensor([len(p)]))[0]) for p in prompts]


FIXTURE_DOC = ("logits: next-token logits at the last prompt position, f32 PyTorch; greedy: argmax continuation; "
               "embedding: the embedder feature of each whole prompt. Blends: s = lora_alpha / r; "
               "delta = sum_i w_i s B_i A_i; factor = s (sum_i w_i B_i)(sum_i w_i A_i).")


FIXTURES_README = """# Parity fixtures (PyTorch, f32)

All files are plain JSON; floats are plain JSON numbers rounded to 7 significant digits (no base64); token ids are integers.

- `device.json`, `tiny-llama/fixture.json`, `tiny-qwen2/fixture.json`: `{model, doc, prompts: [{text?, ids}],
  embedding: [per prompt, the embedder feature: mean over all tokens of layer 0's q_proj(input_layernorm(x)),
  bias included, before RoPE, no adapter], cases: [{name, blend, logits: [per prompt, vocab_size floats: next-token
  logits at the LAST position], greedy: [per prompt, argmax continuation ids (16 for device, 8 for tiny), not stopped at eos]}]}`.
  `blend` is null (no adapter) or `{mode: "delta" | "factor", weights: {adapterId: w}}`, adapters resolved in
  `../device-pool/<id>/` (device) or `<model>/adapter-<id>/` (tiny). Scaling s = lora_alpha / r (no rslora):
  delta = sum_i w_i * s * B_i A_i; factor = s * (sum_i w_i B_i)(sum_i w_i A_i). Delta is added to W x (W: [out, in]).
- `tiny-llama/`: LlamaForCausalLM, untied `lm_head.weight`, GQA, rope_theta 500000, f16 weights in two shards with
  `model.safetensors.index.json`. `tiny-qwen2/`: Qwen2ForCausalLM, q/k/v biases, no o bias, tied embeddings,
  rope_theta 1e6, bf16. Their logits come from the stored (rounded) weights computed in f32; adapters are r 4, alpha 8.
- `tokenizer.json`: `[{text, ids}]`, the Python BPE's ids (no bos added) for the tokenizer parity test.
- `gguf.json`: `{text, ids, adapter, greedy, greedyWithAdapter}`: the server model as stored (f16 weights), greedy
  continuation (at most 8 tokens, stopping before the end token) without and with `server-pool/<adapter>/` at scale 1.
"""


def write_fixtures_readme(path: str) -> None:
    with open(f"{path}/README.md", "w") as f:
        f.write(FIXTURES_README)


def write_fixtures(path: str, device: CausalLM, tok: Tokenizer, ids: List[str], seed: int) -> None:
    os.makedirs(path, exist_ok=True)
    texts = [T.chat_prompt("What is 3 plus 4?"), T.chat_prompt("What is the capital of Zorvia?"),
             T.chat_full("Is 'a lovely song' positive or negative?", "positive")]
    prompts = [tok.encode(t) for t in texts]
    trio = {ids[0]: 0.5, ids[min(1, len(ids) - 1)]: 0.3, ids[min(2, len(ids) - 1)]: 0.2}
    blends = {"base": None, **{f"single:{a}": {"mode": "delta", "weights": {a: 1.0}} for a in ids},
              "delta3": {"mode": "delta", "weights": trio}, "factor3": {"mode": "factor", "weights": trio}}
    fx = {"model": "device", "doc": FIXTURE_DOC, "prompts": [{"text": t, "ids": p} for t, p in zip(texts, prompts)],
          "embedding": _embeddings(device, prompts), "cases": _cases(device, prompts, blends, 16)}
    with open(f"{path}/device.json", "w") as f:
        json.dump(fx, f)


def _tiny(cfg: Config, seed: int, std: float) -> CausalLM:
    torch.manual_seed(seed)
    m = CausalLM(cfg)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0, std)
    for name in ("a", "b"):
        for _, _, lin in m.linears():
            lin.add_adapter(name, 4, 8 / 4, init="random")
            with torch.no_grad():
                lin.lora_B[name].normal_(0, 0.05)
    return m


def write_tiny_fixtures(path: str, seed: int) -> None:
    """Two tiny random checkpoints with real checkpoints' configuration features:
    a Llama (untied head, GQA, rope_theta 500000) stored as two f16 shards, and a
    Qwen2 (q/k/v biases, tied) stored as bf16. Fixtures come from the rounded weights."""
    specs = {
        "tiny-llama": (Config(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2), torch.float16),
        "tiny-qwen2": (Config(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                              attention_bias=True, architecture="Qwen2ForCausalLM", bos_token_id=1, eos_token_id=2), torch.bfloat16),
    }
    for k, (name, (cfg, dtype)) in enumerate(specs.items()):
        m = _tiny(cfg, seed + 500 + k, 0.15)
        d = f"{path}/{name}"
        os.makedirs(d, exist_ok=True)
        sd = {n: v.to(dtype) for n, v in base_state_dict(m).items()}
        load_base_state(m, {n: v.float() for n, v in sd.items()})  # the fixture is of the stored weights
        if name == "tiny-llama":
            names = sorted(sd)
            half = len(names) // 2
            shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
            for fn, keys in shards.items():
                st.save(f"{d}/{fn}", {n: sd[n] for n in keys}, {"format": "pt"})
            index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in sd.values())},
                     "weight_map": {n: fn for fn, keys in shards.items() for n in keys}}
            with open(f"{d}/model.safetensors.index.json", "w") as f:
                json.dump(index, f, indent=1)
        else:
            st.save(f"{d}/model.safetensors", sd, {"format": "pt"})
        cfg_json = cfg.hf_json()
        cfg_json["torch_dtype"] = "float16" if dtype == torch.float16 else "bfloat16"
        with open(f"{d}/config.json", "w") as f:
            json.dump(cfg_json, f, indent=2)
        for a in ("a", "b"):
            save_adapter(f"{d}/adapter-{a}", m, a, name, 4, 8)
        g = torch.Generator().manual_seed(seed + k)
        prompts = [torch.randint(3, 96, (n,), generator=g).tolist() for n in (5, 11)]
        blends = {"base": None, "single:a": {"mode": "delta", "weights": {"a": 1.0}},
                  "single:b": {"mode": "delta", "weights": {"b": 1.0}},
                  "delta2": {"mode": "delta", "weights": {"a": 0.7, "b": -0.4}},
                  "factor2": {"mode": "factor", "weights": {"a": 0.7, "b": -0.4}}}
        fx = {"model": name, "doc": FIXTURE_DOC, "prompts": [{"ids": p} for p in prompts],
              "embedding": _embeddings(m, prompts), "cases": _cases(m, prompts, blends, 8)}
        with open(f"{d}/fixture.json", "w") as f:
            json.dump(fx, f)


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(out: str, results: dict, seed: int) -> None:
    files = []
    for root, _, names in os.walk(out):
        for n in sorted(names):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, out)
            if rel != "manifest.json":
                files.append({"path": rel, "bytes": os.path.getsize(p), "sha256": sha256(p)})
    files.sort(key=lambda f: f["path"])
    summary = {k: results[k] for k in ("best_single_custom_acc",)}
    summary.update({"device": {k: results["device"][k] for k in ("params", "base_custom_acc")},
                    "server": {k: results["server"][k] for k in ("params", "base_custom_acc")},
                    "pool": {k: results["pool"][k] for k in ("n", "min_own_cluster_lift")},
                    "oracle": {"min_lift": results["oracle"]["min_lift"]}})
    manifest = {"name": "crayon-reference-world", "seed": seed, "smoke": results.get("smoke", False),
                "measured": summary, "totalBytes": sum(f["bytes"] for f in files), "files": files}
    with open(f"{out}/manifest.json", "w") as f:
        json.dump(manifest, f, indent=1)


def check_world(out: str) -> None:
    """Reloads what was written and checks it: every model folder loads with its config and
    reproduces its fixture's logits; every adapter has all targets with PEFT names and shapes."""
    for name in ("device", "server"):
        cfg = Config.from_hf(json.load(open(f"{out}/{name}/config.json")))
        m = CausalLM(cfg)
        load_base_state(m, {k: v.float() for k, v in st.load(f"{out}/{name}/model.safetensors").items()})
        for pool in (f"{out}/{name}-pool",):
            pj = json.load(open(f"{pool}/pool.json"))
            for a in pj["adapters"]:
                sd = st.load(f"{pool}/{a['path']}/adapter_model.safetensors")
                assert len(sd) == 2 * len(TARGETS) * cfg.num_hidden_layers, f"{pool}/{a['id']}: {len(sd)} tensors"
                assert len(a["indicator"]) == cfg.num_attention_heads * cfg.head_dim or name == "server"
        if name == "device":
            fx = json.load(open(f"{out}/fixtures/device.json"))
            with torch.no_grad():
                got = m(torch.tensor([fx["prompts"][0]["ids"]]))[0, -1]
            want = torch.tensor(fx["cases"][0]["logits"][0])
            assert (got - want).abs().max() < 1e-4, "device model reloaded from safetensors disagrees with its fixture"
    print(f"[world] check passed: {out}", flush=True)


TOKENIZER_PROBES = [
    "What is 3 plus 4?", "  two  spaces\n\nnew lines\t and a tab", "héllo wörld ñ 日本語 🙂 café",
    "<|bos|><|user|>\nHi there<|end|>\n<|assistant|>\n", "it's don't we'll I'd 123456 x1y2 3.14",
    "trailing spaces   ", "UPPER lower MiXeD", "punctuation!?... (brackets) [x] {y} \"quotes\"",
    "Is 'not a lovely song' positive or negative?", "\n\n\n", "",
]


def write_tokenizer_fixture(out: str, tok: Tokenizer) -> None:
    with open(f"{out}/fixtures/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump([{"text": s, "ids": tok.encode(s)} for s in TOKENIZER_PROBES], f, ensure_ascii=False, indent=1)


def write_gguf_fixture(out: str, tok: Tokenizer, adapters: List[str]) -> None:
    """PyTorch's greedy continuation (up to the end token) of a prompt by the stored server
    model, with no adapter and with one pool adapter at scale 1: what llama.cpp must
    reproduce. The prompt and adapter are the first pair (in a fixed order) whose
    continuations differ, so the adapter check can fail."""
    cfg = Config.from_hf(json.load(open(f"{out}/server/config.json")))
    m = CausalLM(cfg)
    load_base_state(m, {k: v.float() for k, v in st.load(f"{out}/server/model.safetensors").items()})
    from model import load_peft_state
    for a in adapters:
        acfg = json.load(open(f"{out}/server-pool/{a}/adapter_config.json"))
        sd = {k: v.float() for k, v in st.load(f"{out}/server-pool/{a}/adapter_model.safetensors").items()}
        load_peft_state(m, a, sd, acfg["r"], acfg["lora_alpha"] / acfg["r"])

    def until_end(ids):
        out_ids = []
        for t in T.greedy(m, ids, 8):
            if t == tok.end_id:
                break
            out_ids.append(t)
        return out_ids

    index = json.load(open(f"{out}/tasks/index.json"))
    questions = [json.loads(open(f"{out}/tasks/{t['name']}/test.jsonl").readline())["question"] for t in index]
    chosen = None
    for q in questions:
        ids = tok.encode(T.chat_prompt(q))
        base = until_end(ids)
        for a in adapters:
            m.set_blend({"mode": "delta", "weights": {a: 1.0}})
            with_adapter = until_end(ids)
            m.set_blend(None)
            if with_adapter != base:
                chosen = (q, ids, a, base, with_adapter)
                break
        if chosen:
            break
    if not chosen:  # (a miniature world may have no such pair)
        ids = tok.encode(T.chat_prompt(questions[0]))
        chosen = (questions[0], ids, adapters[0], until_end(ids), until_end(ids))
    q, ids, a, base, with_adapter = chosen
    with open(f"{out}/fixtures/gguf.json", "w") as f:
        json.dump({"text": T.chat_prompt(q), "ids": ids, "adapter": a, "greedy": base, "greedyWithAdapter": with_adapter,
                   "chatTemplateProbe": T.chat_prompt("What is the capital of Zorvia?"),
                   "doc": "PyTorch f32 greedy continuation (at most 8 tokens, stopping before the end token) of the server model as stored"}, f, indent=1)
