"""Byte-level BPE, trained and applied by our own code, saved in Hugging Face's
tokenizer.json format (ByteLevel pre-tokenizer with GPT-2's split rule, so
@huggingface/transformers and llama.cpp's "gpt2" tokenizer reproduce it).
"""
import json
import unicodedata
from collections import Counter
from typing import Dict, List, Tuple

SPECIALS = ["<|bos|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|pad|>"]
BOS, END, PAD = "<|bos|>", "<|end|>", "<|pad|>"

# The chat template, in Jinja for transformers.js and apply_chat_template;
# render_chat() below is the same thing in Python.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def render_chat(messages: List[dict], add_generation_prompt: bool) -> str:
    out = BOS
    for m in messages:
        out += f"<|{m['role']}|>\n{m['content']}<|end|>\n"
    if add_generation_prompt:
        out += "<|assistant|>\n"
    return out


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_CHAR = bytes_to_unicode()


def _cat(c: str) -> str:
    k = unicodedata.category(c)[0]
    return "L" if k == "L" else "N" if k == "N" else "S" if c.isspace() else "O"


CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]


def pretokenize(s: str) -> List[str]:
    """GPT-2's split, `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`,
    as a scanner (Python's re has no \\p{L})."""
    out, i, n = [], 0, len(s)
    while i < n:
        c = next((x for x in CONTRACTIONS if s.startswith(x, i)), None)
        if c:
            out.append(c); i += len(c); continue
        j = i + 1 if s[i] == " " and i + 1 < n and _cat(s[i + 1]) != "S" else i
        k = _cat(s[j])
        if k in "LNO":
            e = j
            while e < n and _cat(s[e]) == k:
                e += 1
            out.append(s[i:e]); i = e; continue
        e = i  # a run of whitespace
        while e < n and _cat(s[e]) == "S":
            e += 1
        if e < n and e - i >= 2:
            e -= 1  # \s+(?!\S): leave the last space to lead the next word
        out.append(s[i:e]); i = e
    return out


def _word_symbols(word: str) -> Tuple[str, ...]:
    return tuple(BYTE_CHAR[b] for b in word.encode("utf-8"))


def train_bpe(texts: List[str], vocab_size: int) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Classic BPE on pre-token counts; ties broken by the pair itself (deterministic)."""
    words = Counter()
    for t in texts:
        for seg in split_specials(t):
            if seg not in SPECIALS:
                words.update(pretokenize(seg))
    corpus = {_word_symbols(w): c for w, c in words.items()}
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for b in range(256):
        vocab[BYTE_CHAR[b]] = len(vocab)
    merges = []
    while len(vocab) < vocab_size:
        pairs = Counter()
        for syms, c in corpus.items():
            for a, b in zip(syms, syms[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        corpus = {_merge(syms, best): c for syms, c in corpus.items()}
    return vocab, merges


def _merge(syms: Tuple[str, ...], pair: Tuple[str, str]) -> Tuple[str, ...]:
    out, i = [], 0
    while i < len(syms):
        if i + 1 < len(syms) and syms[i] == pair[0] and syms[i + 1] == pair[1]:
            out.append(syms[i] + syms[i + 1]); i += 2
        else:
            out.append(syms[i]); i += 1
    return tuple(out)


def split_specials(text: str) -> List[str]:
    out, i = [], 0
    while i < len(text):
        hits = [(text.find(s, i), s) for s in SPECIALS]
        hits = [(p, s) for p, s in hits if p >= 0]
        if not hits:
            out.append(text[i:]); break
        p, s = min(hits)
        if p > i:
            out.append(text[i:p])
        out.append(s); i = p + len(s)
    return out


class Tokenizer:
    def __init__(self, vocab: Dict[str, int], merges: List[Tuple[str, str]]):
        self.vocab = vocab
        self.inv = {i: s for s, i in vocab.items()}
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.merges = merges
        self.byte_of = {c: b for b, c in BYTE_CHAR.items()}
        self._cache: Dict[str, List[int]] = {}

    @property
    def bos_id(self) -> int: return self.vocab[BOS]
    @property
    def end_id(self) -> int: return self.vocab[END]
    @property
    def pad_id(self) -> int: return self.vocab[PAD]

    def _bpe(self, word: str) -> List[int]:
        if word in self._cache:
            return self._cache[word]
        syms = list(_word_symbols(word))
        while len(syms) > 1:
            ranked = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:]))]
            r, _ = min(ranked)
            if r == 1 << 30:
                break
            pair = self.merges[r]
            syms = list(_merge(tuple(syms), pair))
        ids = [self.vocab[s] for s in syms]
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> List[int]:
        ids = []
        for seg in split_specials(text):
            if seg in SPECIALS:
                ids.append(self.vocab[seg])
            else:
                for w in pretokenize(seg):
                    ids.extend(self._bpe(w))
        return ids

    def decode(self, ids: List[int]) -> str:
        parts, buf = [], bytearray()
        for i in ids:
            s = self.inv[i]
            if s in SPECIALS:
                parts.append(buf.decode("utf-8", errors="replace")); buf = bytearray(); parts.append(s)
            else:
                buf.extend(self.byte_of[c] for c in s)
        parts.append(buf.decode("utf-8", errors="replace"))
        return "".join(parts)

    def save(self, out_dir: str, model_max_length: int) -> None:
        added = [{"id": self.vocab[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": True} for s in SPECIALS]
        tok = {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": None,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": self.vocab, "merges": [[a, b] for a, b in self.merges]},
        }
        cfg = {
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": END, "pad_token": PAD,
            "unk_token": None, "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
            "model_max_length": model_max_length, "chat_template": CHAT_TEMPLATE,
        }
        with open(f"{out_dir}/tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(tok, f, ensure_ascii=False, indent=1)
        with open(f"{out_dir}/tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=2)


def load_tokenizer(path: str) -> Tokenizer:
    with open(f"{path}/tokenizer.json", encoding="utf-8") as f:
        t = json.load(f)
    return Tokenizer(t["model"]["vocab"], [tuple(m) for m in t["model"]["merges"]])
