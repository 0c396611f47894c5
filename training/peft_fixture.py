"""Reference PEFT LoRA adapters on a tiny random Llama, and PyTorch's logits with each applied by PEFT itself.

Run by `bash scripts/real-model.sh` after training/real_model.py (same venv, which pins peft). The engine
reads adapter_config.json as PEFT does (target_modules as names, suffixes, one regular expression or
'all-linear'; exclude_modules; layers_to_transform; rank_pattern and alpha_pattern; use_rslora):
src/lib/engine/peft-parity.test.ts checks it against what PEFT made of each config here. Written to
$CRAYON_REAL_MODEL/reference/peft (default .cache/real-model/reference/peft):

  base/                    config.json, model.safetensors (f32): LlamaForCausalLM, 3 layers, hidden 32, vocab 96
  <id>/                    adapter_config.json, adapter_model.safetensors, as PEFT's save_pretrained wrote them
                           (its README.md, a model card template, removed; 'all-linear' put back, see ADAPTERS)
  base.f32, <id>.f32       next-token logits, [len(SEQUENCES), vocab] float32 LE: the base model, PEFT with <id>
  fixture.json             written last: sequences, per adapter its config, the modules PEFT injected (rank,
                           alpha, scale) and its logits file; the hashes of this script and of READY it was made
                           for, and of every file it wrote

Idempotent: skipped when fixture.json matches this script, READY and its files. Deterministic: seeded,
one torch thread, PYTHONHASHSEED=0 (PEFT saves target_modules, a set, as a list in hash order).
"""
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

if os.environ.get('PYTHONHASHSEED') != '0':
    os.environ['PYTHONHASHSEED'] = '0'
    os.execv(sys.executable, [sys.executable, '-P', *sys.argv])

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != ROOT / 'training']

import numpy as np  # noqa: E402

CACHE = Path(os.environ.get('CRAYON_REAL_MODEL') or ROOT / '.cache/real-model').resolve()
READY, OUT = CACHE / 'READY', CACHE / 'reference' / 'peft'
SCRIPT = Path(__file__).resolve()

# model.layers.<l>.self_attn.{q,k,v,o}_proj, model.layers.<l>.mlp.{gate,up,down}_proj
ATTENTION = ['q_proj', 'k_proj', 'v_proj', 'o_proj']
PROJECTIONS = ATTENTION + ['gate_proj', 'up_proj', 'down_proj']
N_LAYERS, VOCAB = 3, 96
SEQUENCES = [[5, 17, 42, 3, 88], [1, 60, 60, 7, 23, 95, 0, 31], [12, 11, 10, 9, 8, 50, 51, 52, 70, 2, 44, 19]]

# (id, what it checks, LoraConfig arguments). The first six are the PEFT features the engine implements;
# the last three are corners where a reading of PEFT's code and PEFT itself could part.
ADAPTERS = [
    ('patterns', 'rank_pattern by suffix and by full name, alpha_pattern by suffix, on all seven projections',
     dict(r=4, lora_alpha=8, target_modules=PROJECTIONS,
          rank_pattern={'q_proj': 2, 'model.layers.2.mlp.down_proj': 6}, alpha_pattern={'v_proj': 3})),
    ('regex-targets', 'target_modules as one regular expression, full-matched: q_proj and v_proj of layers 0 and 2',
     dict(r=4, lora_alpha=8, target_modules=r'.*\.(0|2)\.self_attn\.(q_proj|v_proj)')),
    ('layers', 'layers_to_transform [1, 2] with layers_pattern "layers", on q/k/v/o',
     dict(r=4, lora_alpha=4, target_modules=ATTENTION, layers_to_transform=[1, 2], layers_pattern='layers')),
    ('rslora', 'use_rslora (alpha / sqrt(r)) with a rank_pattern and an anchored (^) full-name alpha_pattern key',
     dict(r=4, lora_alpha=6, use_rslora=True, target_modules=['q_proj', 'v_proj', 'gate_proj', 'down_proj'],
          rank_pattern={'gate_proj': 8}, alpha_pattern={'^model.layers.1.self_attn.v_proj': 2})),
    ('all-linear', "target_modules 'all-linear' (every projection, not lm_head) as adapter_config.json says it; "
     'PEFT saves the names it expanded it to, so this config is written back as given before PEFT loads it',
     dict(r=2, lora_alpha=5, target_modules='all-linear')),
    ('exclude', "exclude_modules as a list (a suffix and a full name) under 'all-linear'",
     dict(r=3, lora_alpha=3, target_modules='all-linear', exclude_modules=['o_proj', 'model.layers.0.mlp.up_proj'])),
    ('exclude-regex', 'exclude_modules as one regular expression (everything in layer 1)',
     dict(r=2, lora_alpha=4, target_modules=['q_proj', 'k_proj', 'up_proj', 'down_proj'],
          exclude_modules=r'.*\.1\.(self_attn|mlp)\..*')),
    ('pattern-order', 'rank_pattern keys tried in order (PEFT sorts them when saving): "down_proj" comes before '
     'the full name of layer 2\'s down_proj, and PEFT gives that module the first key\'s rank',
     dict(r=4, lora_alpha=8, target_modules=['q_proj', 'down_proj'],
          rank_pattern={'down_proj': 3, 'model.layers.2.mlp.down_proj': 6})),
    ('pattern-alternation', 'an alpha_pattern key with "|": PEFT matches (.*\\.)?(key)$, the alternation in a group',
     dict(r=4, lora_alpha=8, target_modules=['q_proj', 'v_proj', 'up_proj'], alpha_pattern={'self_attn|up_proj': 16})),
    ('full-name-target-layers', 'layers_to_transform [1, 2] with a full module name in target_modules (layer 0\'s '
     'down_proj): PEFT injects a module named in full whatever its layer',
     dict(r=4, lora_alpha=8, target_modules=['q_proj', 'model.layers.0.mlp.down_proj'],
          layers_to_transform=[1, 2], layers_pattern='layers')),
]


def log(msg: str) -> None:
    print(f'peft-fixture: {msg}', flush=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inputs() -> dict:
    return {'training/peft_fixture.py': sha256(SCRIPT), 'READY': sha256(READY)}


def is_current() -> bool:
    """fixture.json was written for this script and this READY, and every file it lists is there unchanged."""
    try:
        fixture = json.loads((OUT / 'fixture.json').read_text())
    except (OSError, ValueError):
        return False
    files = fixture.get('files') or {}
    return fixture.get('inputs') == inputs() and bool(files) and all(
        (OUT / p).is_file() and sha256(OUT / p) == h for p, h in files.items())


def base_model(torch, transformers):
    """A tiny random Llama whose weights are O(1) in effect (std 1/sqrt(fan_in), norms near 1), so logits are
    O(1) and a LoRA term moves them by far more than the tests' 1e-4."""
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=N_LAYERS, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, rope_theta=10000.0,
        tie_word_embeddings=False, torch_dtype='float32')
    model = transformers.LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith('norm.weight'):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif name == 'model.embed_tokens.weight':
                p.copy_(torch.randn(p.shape, generator=g))
            else:  # [out, in]
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[1] ** 0.5)
    return model


def load_base(transformers, path: Path):
    model = transformers.LlamaForCausalLM.from_pretrained(path, torch_dtype='float32', attn_implementation='eager')
    return model.eval()


def next_token_logits(torch, model) -> np.ndarray:
    with torch.no_grad():
        rows = [model(torch.tensor([ids])).logits[0, -1].to(torch.float32).numpy() for ids in SEQUENCES]
    return np.stack(rows).astype('<f4')


def injected(model) -> list:
    """Every LoRA module PEFT made, with the rank, alpha and scale it gave it."""
    from peft.tuners.lora import LoraLayer
    out = []
    for name, m in model.named_modules():
        if isinstance(m, LoraLayer) and 'default' in m.r:
            name = name.removeprefix('base_model.model.')
            out.append({'name': name, 'layer': int(name.split('.')[2]), 'target': name.split('.')[-1],
                        'r': m.r['default'], 'alpha': m.lora_alpha['default'], 'scale': m.scaling['default']})
    return out


def make_adapter(torch, transformers, peft, base_dir: Path, out: Path, seed: int, kwargs: dict) -> tuple[np.ndarray, list]:
    """PEFT's own LoRA on the base, A and B random (PEFT starts B at zero), saved; then loaded back with
    PeftModel.from_pretrained, as a user of the saved adapter would, for the logits."""
    base = load_base(transformers, base_dir)
    base.name_or_path = '../base'  # what adapter_config.json's base_model_name_or_path says: not this machine's path
    model = peft.get_peft_model(base, peft.LoraConfig(task_type='CAUSAL_LM', **kwargs))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if '.lora_A.' in name or '.lora_B.' in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    model.eval()
    in_memory = next_token_logits(torch, model)
    model.save_pretrained(out, safe_serialization=True, save_embedding_layers=False)  # no embeddings targeted
    (out / 'README.md').unlink()  # PEFT's model card template: not read
    if out.name == 'all-linear':
        path = out / 'adapter_config.json'
        config = json.loads(path.read_text())
        config['target_modules'] = 'all-linear'
        path.write_text(json.dumps(config, indent=2, sort_keys=True))  # as PEFT writes it
    loaded = peft.PeftModel.from_pretrained(load_base(transformers, base_dir), out).eval()
    logits = next_token_logits(torch, loaded)
    # The saved config must mean to PEFT what the one in memory did (it sorts rank_pattern's keys, for one).
    if not (logits == in_memory).all():
        raise SystemExit(f'peft-fixture: {out.name}: PEFT gives other logits after save_pretrained and from_pretrained')
    return logits, injected(loaded)


def main() -> None:
    start = time.time()
    if not READY.is_file():
        raise SystemExit(f'peft-fixture: {READY} is missing: run training/real_model.py first (bash scripts/real-model.sh)')
    if is_current():
        log(f'{OUT} is complete (fixture.json matches this script and READY): nothing to do')
        return
    os.environ.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1')
    import torch
    import transformers
    import peft
    from importlib.metadata import version
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one thread: the same logits bit for bit whatever the machine's core count
    tmp = OUT.with_name('peft.tmp')
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    base_dir = tmp / 'base'
    base_model(torch, transformers).save_pretrained(base_dir, safe_serialization=True)
    (base_dir / 'generation_config.json').unlink(missing_ok=True)  # not read; keeps the folder to what the test needs
    base = next_token_logits(torch, load_base(transformers, base_dir))
    base.tofile(tmp / 'base.f32')
    adapters = []
    for seed, (aid, checks, kwargs) in enumerate(ADAPTERS, start=100):
        logits, modules = make_adapter(torch, transformers, peft, base_dir, tmp / aid, seed, kwargs)
        logits.tofile(tmp / f'{aid}.f32')
        # The config as given, JSON-able (regular expressions stay strings), beside what PEFT made of it.
        adapters.append({'id': aid, 'dir': aid, 'checks': checks, 'config': kwargs, 'modules': modules,
                         'logits': f'{aid}.f32', 'maxAbsDiffFromBase': float(abs(logits - base).max())})
        log(f'{aid}: {len(modules)} LoRA modules, logits differ from the base by up to {adapters[-1]["maxAbsDiffFromBase"]:.3f}')
    # base/config.json records the transformers version, adapter_config.json the peft version: no paths of this machine.
    files = {str(p.relative_to(tmp)): sha256(p) for p in sorted(tmp.rglob('*')) if p.is_file()}
    fixture = {
        'peft': version('peft'), 'transformers': version('transformers'), 'torch': version('torch'),
        'base': 'base', 'vocab': VOCAB, 'nLayers': N_LAYERS, 'sequences': SEQUENCES, 'baseLogits': 'base.f32',
        'logitsShape': [len(SEQUENCES), VOCAB], 'adapters': adapters, 'inputs': inputs(), 'files': files,
    }
    (tmp / 'fixture.json').write_text(json.dumps(fixture, indent=1) + '\n')
    shutil.rmtree(OUT, ignore_errors=True)
    tmp.rename(OUT)
    size = sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file())
    log(f'done: {OUT} ({len(adapters)} adapters, {size / 1e3:.0f} kB) in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
