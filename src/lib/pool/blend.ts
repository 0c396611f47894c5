// Crayon's instant customization: the user's examples, embedded by the base
// model's first-layer query feature, are averaged; the mean is compared with
// each pool adapter's indicator (cosine); softmax(similarity / tau), kept to
// the top k if asked, gives the blend weights. No training, no gradients.
import { AppError } from '../errors';
import type { Blend } from '../engine/lora';
import { centroid, cosine } from '../router/policy';
import { cmaes } from './cmaes';

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
  const all = pool;
  pool = pool.filter((p) => p.indicator.length > 0); // adapters imported without examples have no indicator
  if (pool.length === 0) throw new AppError('invalid-argument', 'No adapter in the pool has an indicator to compare the examples with.');
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
  const weights = Object.fromEntries([...all.map((p) => [p.id, 0] as const), ...pool.map((p, i) => [p.id, w[i]] as const)]);
  return {
    similarities: Object.fromEntries(pool.map((p, i) => [p.id, sims[i]])),
    weights,
    blend: { mode: opts.mode ?? 'delta', weights: Object.fromEntries(Object.entries(weights).filter(([, x]) => x > 0)) },
    centroid: mean,
  };
}

// ---- Baselines, for comparison with Crayon's blend on the same pool. ----

/** Single best: the one adapter whose indicator is most similar to the examples' mean (weight 1). */
export function singleBest(exampleFeatures: ArrayLike<number>[], pool: Indicator[]): CrayonBlend {
  // topK 1 keeps exactly the most similar adapter whatever tau is.
  return crayonBlend(exampleFeatures, pool, { tau: 1, topK: 1 });
}

/** Uniform: every adapter of the pool at weight 1/N, ignoring the examples. */
export function uniformBlend(pool: Indicator[], mode: 'delta' | 'factor' = 'delta'): Blend {
  if (pool.length === 0) throw new AppError('invalid-argument', 'The adapter pool is empty.');
  return { mode, weights: Object.fromEntries(pool.map((p) => [p.id, 1 / pool.length])) };
}

export interface LoraHubOptions {
  /** Objective evaluations (LoraHub's "inference steps"); default 40. */
  steps?: number;
  /** L1 penalty on the weights; default 0.05 (LoraHub's). */
  l1?: number;
  /** Weight bounds; default ±1.5 (LoraHub's). */
  bound?: number;
  seed?: number;
  signal?: AbortSignal;
}

/**
 * LoraHub (Huang et al., 2023): a gradient-free search (CMA-ES here) for the
 * factor-blend weights that minimize the few-shot examples' loss plus
 * l1·mean|w|, starting from all zeros. `exampleLoss` scores a blend on the
 * user's examples (mean token cross-entropy of the outputs).
 */
export async function lorahubBlend(ids: string[], exampleLoss: (blend: Blend) => Promise<number>, opts: LoraHubOptions = {}): Promise<{ blend: Blend; loss: number; evaluations: number }> {
  if (ids.length === 0) throw new AppError('invalid-argument', 'The adapter pool is empty.');
  const l1 = opts.l1 ?? 0.05;
  const bound = opts.bound ?? 1.5;
  const toBlend = (x: number[]): Blend => ({ mode: 'factor', weights: Object.fromEntries(ids.map((id, i) => [id, x[i]])) });
  const objective = async (x: number[]) => (await exampleLoss(toBlend(x))) + (l1 * x.reduce((s, v) => s + Math.abs(v), 0)) / x.length;
  const r = await cmaes(objective, { x0: new Array(ids.length).fill(0), sigma0: bound / 3, budget: opts.steps ?? 40, lower: -bound, upper: bound, seed: opts.seed, signal: opts.signal });
  return { blend: toBlend(r.x), loss: r.f, evaluations: r.evaluations };
}

// ---- A variant: Crayon's blend with a no-harm check on the user's examples. ----

export interface CheckedBlend {
  /** The blend to use: the candidate, or null (the base model) when the candidate did worse. */
  blend: Blend | null;
  kept: boolean;
  /** Mean per-token loss of the user's examples' outputs without and with the candidate. */
  baseLoss: number;
  blendLoss: number;
}

/**
 * Keeps Crayon's blend only if it does not raise the loss of the user's own
 * examples above the base model's; otherwise falls back to the base model.
 * A pool adapter trained on one cluster can hurt a task none of them covers,
 * and the examples the user already gave can tell. Two evaluations of the
 * examples' loss, no search (LoraHub's search makes 40).
 */
export async function noHarmCheck(candidate: Blend, exampleLoss: (blend: Blend | null) => Promise<number>): Promise<CheckedBlend> {
  const baseLoss = await exampleLoss(null);
  const blendLoss = await exampleLoss(candidate);
  if (!Number.isFinite(baseLoss) || !Number.isFinite(blendLoss)) {
    throw new AppError('invalid-argument', `The examples' loss is not a finite number (base ${baseLoss}, blend ${blendLoss}).`);
  }
  const kept = blendLoss <= baseLoss;
  return { blend: kept ? candidate : null, kept, baseLoss, blendLoss };
}
