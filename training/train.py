"""Training and evaluation loops for the reference world: pretraining, LoRA
fine-tuning on answer tokens, multiple-choice accuracy by option
log-likelihood, Crayon's query features, and spherical k-means."""
import math
import random
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from model import CausalLM
from tokenizer import Tokenizer, render_chat


def chat_prompt(question: str) -> str:
    return render_chat([{"role": "user", "content": question}], add_generation_prompt=True)


def chat_full(question: str, answer: str) -> str:
    """An example as the model sees it in training, and as Crayon embeds it."""
    return render_chat([{"role": "user", "content": question}, {"role": "assistant", "content": answer}], False)


def encode_example(tok: Tokenizer, question: str, answer: str) -> Tuple[List[int], int]:
    """(ids of the whole chat, index where the answer starts)."""
    p = tok.encode(chat_prompt(question))
    a = tok.encode(answer + "<|end|>")
    return p + a, len(p)


def _batch(seqs: List[List[int]], starts: List[int], pad: int):
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    loss_mask = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        ids[i, :len(s)] = torch.tensor(s)
        loss_mask[i, max(st, 1):len(s)] = True  # predict tokens from `st` on
    return ids, loss_mask


def train(model: CausalLM, data: List[Tuple[List[int], int]], params, steps: int, lr: float, batch: int,
          seed: int, pad: int, log: str = "", warmup: int = 50, on_eval=None, eval_every: int = 50) -> float:
    """AdamW with warmup and cosine decay to 10%; `data` is [(ids, loss_start)]. Returns the last loss.
    `on_eval(step)`, if given, runs every `eval_every` steps and after the last one (in eval mode)."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    rng = random.Random(seed)
    model.train()
    t0, ema = time.time(), None
    for step in range(steps):
        frac = step / max(1, steps - 1)
        cur = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = cur
        picks = [data[rng.randrange(len(data))] for _ in range(batch)]
        ids, mask = _batch([p[0] for p in picks], [p[1] for p in picks], pad)
        logits = model(ids[:, :-1])
        tgt = ids[:, 1:]
        m = mask[:, 1:]
        loss = F.cross_entropy(logits[m], tgt[m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if log and (step % 200 == 0 or step == steps - 1):
            print(f"  [{log}] step {step}/{steps} loss {ema:.3f} ({time.time() - t0:.0f}s)", flush=True)
        if on_eval and ((step + 1) % eval_every == 0 or step == steps - 1):
            model.eval()
            on_eval(step + 1)
            model.train()
    model.eval()
    return ema or 0.0


@torch.no_grad()
def option_logprobs(model: CausalLM, tok: Tokenizer, items: Sequence[dict], batch_items: int = 48) -> List[List[float]]:
    """For each item, the summed log-probability of each option (+ <|end|>) as the reply."""
    out = []
    for b0 in range(0, len(items), batch_items):
        chunk = items[b0:b0 + batch_items]
        seqs, starts = [], []
        for it in chunk:
            p = tok.encode(chat_prompt(it["question"]))
            for o in it["options"]:
                seqs.append(p + tok.encode(o + "<|end|>"))
                starts.append(len(p))
        ids, mask = _batch(seqs, starts, tok.pad_id)
        logp = model(ids[:, :-1]).log_softmax(-1)
        tgt_lp = logp.gather(-1, ids[:, 1:, None])[..., 0] * mask[:, 1:]
        sums = tgt_lp.sum(-1).tolist()
        for i in range(len(chunk)):
            out.append(sums[4 * i: 4 * i + 4])
    return out


def mc_accuracy(model: CausalLM, tok: Tokenizer, items: Sequence[dict], blend: Optional[dict] = None) -> float:
    if not items:
        return float("nan")
    model.set_blend(blend)
    lps = option_logprobs(model, tok, items)
    model.set_blend(None)
    right = sum(int(max(range(4), key=lambda k: lp[k]) == it["answer"]) for lp, it in zip(lps, items))
    return right / len(items)


@torch.no_grad()
def features(model: CausalLM, tok: Tokenizer, texts: Sequence[str], batch: int = 128) -> torch.Tensor:
    """Crayon's embedding of each text: [N, q_dim]."""
    rows = []
    for b0 in range(0, len(texts), batch):
        seqs = [tok.encode(t) for t in texts[b0:b0 + batch]]
        ids, _ = _batch(seqs, [0] * len(seqs), tok.pad_id)
        rows.append(model.query_feature(ids, torch.tensor([len(s) for s in seqs])))
    return torch.cat(rows)


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 100) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spherical k-means (cosine) with k-means++ seeding. Returns (centroids [k, d] as
    the mean of each cluster's unit vectors, assignment [N])."""
    g = torch.Generator().manual_seed(seed)
    u = F.normalize(x, dim=-1)
    cent = [u[torch.randint(len(u), (1,), generator=g)].squeeze(0)]
    for _ in range(1, k):
        d = 1 - (u @ torch.stack(cent).T).max(-1).values
        cent.append(u[torch.multinomial(d.clamp_min(1e-12), 1, generator=g)].squeeze(0))
    c = torch.stack(cent)
    for _ in range(iters):
        assign = (u @ F.normalize(c, dim=-1).T).argmax(-1)
        new = torch.stack([u[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
        if torch.allclose(new, c):
            break
        c = new
    assign = (u @ F.normalize(c, dim=-1).T).argmax(-1)
    return c, assign


def assign_to(centroids: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    return (F.normalize(feats, dim=-1) @ F.normalize(centroids, dim=-1).T).argmax(-1)


@torch.no_grad()
def greedy(model: CausalLM, ids: List[int], n: int) -> List[int]:
    out = list(ids)
    for _ in range(n):
        logits = model(torch.tensor([out]))[0, -1]
        out.append(int(logits.argmax()))
    return out[len(ids):]
