// Crayon's instant customization: the user's examples, embedded by the base
// model's first-layer query feature, are averaged; the mean is compared with
// each pool adapter's indicator (cosine); softmax(similarity / tau), kept to
// the top k if asked, gives the blend weights. No training, no gradients.
import { AppError } from '../errors';
import type { Blend } from '../engine/lora';
import { centroid, cosine } from '../router/policy';

export interface Indicator {
  id: string;
  indicator: ArrayLike<number>;
}

export interface CrayonOptions {
  tau: number;
  /** Keep only the k most similar adapters (renormalized); 0 or undefined = all. */
  topK?: number;
  mode?: 'delta' | 'factor';
}

export interface CrayonBlend {
  /** Cosine similarity of the examples' mean feature to each indicator. */
  similarities: Record<string, number>;
  weights: Record<string, number>;
  blend: Blend;
  /** The examples' mean feature: the scope reference for routing. */
  centroid: Float32Array;
}

export function softmax(xs: number[], tau: number): number[] {
  if (!(tau > 0)) throw new AppError('invalid-argument', `The temperature tau must be positive (got ${tau}).`);
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp((x - m) / tau));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export function crayonBlend(exampleFeatures: ArrayLike<number>[], pool: Indicator[], opts: CrayonOptions): CrayonBlend {
  if (exampleFeatures.length === 0) throw new AppError('invalid-argument', 'Give at least one example.');
  if (pool.length === 0) throw new AppError('invalid-argument', 'The adapter pool is empty.');
  const mean = centroid(exampleFeatures);
  for (const p of pool) {
    if (p.indicator.length !== mean.length) {
      throw new AppError('incompatible-adapter', `Adapter "${p.id}" has an indicator of ${p.indicator.length} values, but the model's feature has ${mean.length}: the pool was built for another base model.`);
    }
  }
  const sims = pool.map((p) => cosine(mean, p.indicator));
  let w = softmax(sims, opts.tau);
  const k = opts.topK ?? 0;
  if (k > 0 && k < pool.length) {
    const keep = new Set([...w.keys()].sort((a, b) => w[b] - w[a] || a - b).slice(0, k));
    w = w.map((x, i) => (keep.has(i) ? x : 0));
    const s = w.reduce((a, b) => a + b, 0);
    w = w.map((x) => x / s);
  }
  const weights = Object.fromEntries(pool.map((p, i) => [p.id, w[i]]));
  return {
    similarities: Object.fromEntries(pool.map((p, i) => [p.id, sims[i]])),
    weights,
    blend: { mode: opts.mode ?? 'delta', weights: Object.fromEntries(Object.entries(weights).filter(([, x]) => x > 0)) },
    centroid: mean,
  };
}
