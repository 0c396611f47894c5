"""Re-measures a built world from its files alone (the same measurements as the
builder's, on the committed f32 device model, f16 server model and oracles):
`python3 training/measure_world.py [WORLD_DIR] [--results PATH]`. Used when the
world was built with --out (the builder writes bench/results/world.json only
for the default world/), and to check committed files against their numbers.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io as st  # noqa: E402
import train as T  # noqa: E402
from build_world import LORA_ALPHA, LORA_R, measure  # noqa: E402
from model import CausalLM, Config, load_base_state, load_peft_state  # noqa: E402
from tasks import Item  # noqa: E402
from tokenizer import load_tokenizer  # noqa: E402


def load_model(path: str) -> CausalLM:
    m = CausalLM(Config.from_hf(json.load(open(f"{path}/config.json"))))
    load_base_state(m, {k: v.float() for k, v in st.load(f"{path}/model.safetensors").items()})
    m.eval()
    return m


def add_adapter(m: CausalLM, name: str, path: str) -> None:
    sd = {k: v.float() for k, v in st.load(f"{path}/adapter_model.safetensors").items()}
    load_peft_state(m, name, sd, LORA_R, LORA_ALPHA / LORA_R)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("world", nargs="?", default=os.path.join(root, "world"))
    ap.add_argument("--results", default=os.path.join(root, "bench/results/world.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    w = args.world
    tok = load_tokenizer(f"{w}/tokenizer")
    index = json.load(open(f"{w}/tasks/index.json"))
    suite = {}
    for t in index:
        suite[t["name"]] = {s: [Item(**json.loads(line)) for line in open(f"{w}/tasks/{t['name']}/{s}.jsonl")] for s in ("train", "validation", "test")}
    pool_tasks = [t["name"] for t in index if not t["customized"]]
    custom_tasks = [t["name"] for t in index if t["customized"]]
    device = load_model(f"{w}/device")
    pool = json.load(open(f"{w}/device-pool/pool.json"))
    for a in pool["adapters"]:
        add_adapter(device, a["id"], f"{w}/device-pool/{a['path']}")
    oracle = load_model(f"{w}/device")
    for n in custom_tasks:
        add_adapter(oracle, f"oracle-{n}", f"{w}/device-oracle/{n}")
    server = load_model(f"{w}/server")
    clusters = [{"id": a["id"]} for a in pool["adapters"]]
    centroids = torch.tensor([a["indicator"] for a in pool["adapters"]])
    results = measure(device, oracle, server, tok, suite, pool_tasks, custom_tasks, clusters, centroids)
    results["device"]["params"] = device.n_params()
    results["server"]["params"] = server.n_params()
    manifest = json.load(open(f"{w}/manifest.json"))
    results["build_seconds"] = manifest["measured"].get("build_seconds")
    results["smoke"] = False
    results["measured_from"] = "the world's files (training/measure_world.py)"
    results["measure_seconds"] = round(time.time() - t0, 1)
    with open(args.results, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
