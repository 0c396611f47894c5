"""Which layer's feature should pick the adapters? An investigation for issue 5,
on the built world, reported in bench/results/feature-layers.json.

Crayon embeds text by the mean of the first layer's self-attention query
vectors. Here the same pool clusters (each pool-training example assigned to
its nearest first-layer indicator, as the builder's k-means left them) get
indicators in other feature spaces: the query vectors of every layer, and the
final hidden state. For each customized task and seed, 5 train examples are
embedded in each space and the nearest indicator picks one adapter; its
test accuracy comes from the builder's own measurement of every single
adapter on every customized task (world.json `single_per_task`). Nothing here
chooses anything for the app: it says whether another layer would have picked
better adapters.

  /usr/bin/python3 training/feature_layers.py [world] [--results bench/results/world.json]
"""
import argparse
import json
import os
import random
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402
from measure_world import load_model  # noqa: E402
from model import rope_tables  # noqa: E402
from tokenizer import load_tokenizer  # noqa: E402

K, SEEDS = 5, 5


@torch.no_grad()
def layer_features(model, tok, texts, batch=128):
    """{space name: [N, d]}: mean over real tokens of q_proj(input_layernorm(h)) at each layer, and of the final hidden state."""
    out = {}
    for b0 in range(0, len(texts), batch):
        seqs = [tok.encode(t) for t in texts[b0:b0 + batch]]
        ids, _ = T._batch(seqs, [0] * len(seqs), tok.pad_id)
        lengths = torch.tensor([len(s) for s in seqs])
        keep = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).float()[..., None]
        mean = lambda v: (v * keep).sum(1) / lengths[:, None].float()  # noqa: E731
        Tn = ids.shape[1]
        cos, sin = rope_tables(model.cfg, Tn)
        mask = torch.full((Tn, Tn), float("-inf")).triu(1)
        x = model.model.embed_tokens(ids)
        for i, layer in enumerate(model.model.layers):
            q = layer.self_attn.q_proj(layer.input_layernorm(x))
            out.setdefault(f"layer{i}.query", []).append(mean(q))
            x = layer(x, cos, sin, mask)
        out.setdefault("final.hidden", []).append(mean(model.model.norm(x)))
    return {k: torch.cat(v) for k, v in out.items()}


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("world", nargs="?", default=os.path.join(root, "world"))
    ap.add_argument("--results", default=os.path.join(root, "bench/results/world.json"))
    ap.add_argument("--out", default=os.path.join(root, "bench/results/feature-layers.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    w = args.world
    tok = load_tokenizer(f"{w}/tokenizer")
    model = load_model(f"{w}/device")
    pool = json.load(open(f"{w}/device-pool/pool.json"))
    ids = [a["id"] for a in pool["adapters"]]
    single = json.load(open(args.results))["single_per_task"]
    index = json.load(open(f"{w}/tasks/index.json"))
    read = lambda t, s: [json.loads(line) for line in open(f"{w}/tasks/{t}/{s}.jsonl")]  # noqa: E731
    pool_items = [it for t in index if not t["customized"] for it in read(t["name"], "train")]
    feats = layer_features(model, tok, [T.chat_full(it["question"], it["answer_text"]) for it in pool_items])
    # The pool's clusters: each example at its nearest first-layer indicator (the builder's final k-means step).
    assign = T.assign_to(torch.tensor([a["indicator"] for a in pool["adapters"]]), feats["layer0.query"])
    indicators = {space: torch.stack([F.normalize(f[assign == j], dim=-1).mean(0) for j in range(len(ids))]) for space, f in feats.items()}

    custom = [t["name"] for t in index if t["customized"]]
    picked = {space: {} for space in feats}
    for t in custom:
        train = read(t, "train")
        for s in range(SEEDS):
            ex = random.Random(s).sample(train, K)
            f = layer_features(model, tok, [T.chat_full(it["question"], it["answer_text"]) for it in ex])
            for space in feats:
                sims = F.normalize(f[space].mean(0), dim=-1) @ F.normalize(indicators[space], dim=-1).T
                picked[space].setdefault(t, []).append(ids[int(sims.argmax())])
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    result = {
        "note": __doc__.split("\n\n")[1].replace("\n", " "),
        "examples": K, "seeds": SEEDS,
        "single_by_space": {space: mean([mean([single[t][a] for a in picked[space][t]]) for t in custom]) for space in feats},
        "best_single": mean([max(single[t].values()) for t in custom]),
        "worst_single": mean([min(single[t].values()) for t in custom]),
        "mean_single": mean([mean(list(single[t].values())) for t in custom]),
        "picks": picked,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "picks"}, indent=1))


if __name__ == "__main__":
    main()
