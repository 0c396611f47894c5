// Picking the next token: greedy at temperature 0, otherwise temperature and
// nucleus (top-p) sampling from a seeded generator, so a seed repeats a reply.

export interface SamplingOptions {
  temperature?: number; // 0 = greedy (default)
  topP?: number; // 1 = no nucleus cut (default)
  seed?: number;
}

/** mulberry32: small, fast, good enough for sampling; deterministic per seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** log-softmax of the logits at temperature 1 (the model's own distribution). */
export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export class Sampler {
  private readonly random: () => number;
  constructor(private readonly opts: SamplingOptions = {}) {
    this.random = rng(opts.seed ?? 0x5eed);
  }

  sample(logits: Float32Array): number {
    const t = this.opts.temperature ?? 0;
    if (t <= 0) return argmax(logits);
    const topP = this.opts.topP ?? 1;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
    const probs = new Float64Array(logits.length);
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += probs[i] = Math.exp((logits[i] - max) / t);
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
    let kept = 0;
    let cut = order.length;
    for (let k = 0; k < order.length; k++) {
      kept += probs[order[k]] / sum;
      if (kept >= topP) {
        cut = k + 1;
        break;
      }
    }
    let r = this.random() * order.slice(0, cut).reduce((a, i) => a + probs[i], 0);
    for (let k = 0; k < cut; k++) {
      r -= probs[order[k]];
      if (r <= 0) return order[k];
    }
    return order[cut - 1];
  }
}
