// A small, seeded CMA-ES minimizer (Hansen's (μ/μ_w, λ) form with rank-one and
// rank-μ covariance updates and cumulative step-size adaptation), with box
// bounds handled by repair: an out-of-box sample is clipped, and the clipped
// point is what is evaluated and learned from. Written for LoraHub's weight
// search: a handful of dimensions and a budget of tens of evaluations.
// No npm package implements CMA-ES (checked: cma-es, cmaes, nevergrad absent;
// fmin and optimization-js offer Nelder-Mead / Powell only).
import { AppError } from '../errors';
import { rng } from '../engine/sampler';

export interface CmaesOptions {
  /** Starting point (the mean of the first generation). */
  x0: number[];
  /** Initial step size. */
  sigma0: number;
  /** Number of objective evaluations in all, the starting point's included. */
  budget: number;
  lower?: number;
  upper?: number;
  seed?: number;
  /** Population size λ; default 4 + ⌊3 ln n⌋. */
  popSize?: number;
  signal?: AbortSignal;
}

export interface CmaesResult {
  x: number[];
  f: number;
  evaluations: number;
  /** Best f after each evaluation (for plots and tests). */
  trace: number[];
}

export async function cmaes(f: (x: number[]) => number | Promise<number>, opts: CmaesOptions): Promise<CmaesResult> {
  const n = opts.x0.length;
  if (n === 0) throw new AppError('invalid-argument', 'CMA-ES needs at least one dimension.');
  if (!(opts.sigma0 > 0) || !(opts.budget >= 1)) throw new AppError('invalid-argument', 'CMA-ES needs sigma0 > 0 and a budget of at least 1.');
  const lo = opts.lower ?? -Infinity;
  const hi = opts.upper ?? Infinity;
  const clip = (v: number) => Math.min(hi, Math.max(lo, v));
  const normal = gaussian(rng(opts.seed ?? 0));

  // Strategy parameters (Hansen, "The CMA Evolution Strategy: A Tutorial", table 1).
  const lambda = opts.popSize ?? 4 + Math.floor(3 * Math.log(n));
  const mu = Math.floor(lambda / 2);
  const raw = Array.from({ length: mu }, (_, i) => Math.log(mu + 0.5) - Math.log(i + 1));
  const wsum = raw.reduce((a, b) => a + b, 0);
  const w = raw.map((x) => x / wsum);
  const mueff = 1 / w.reduce((a, b) => a + b * b, 0);
  const cc = (4 + mueff / n) / (n + 4 + (2 * mueff) / n);
  const cs = (mueff + 2) / (n + mueff + 5);
  const c1 = 2 / ((n + 1.3) ** 2 + mueff);
  const cmu = Math.min(1 - c1, (2 * (mueff - 2 + 1 / mueff)) / ((n + 2) ** 2 + mueff));
  const damps = 1 + 2 * Math.max(0, Math.sqrt((mueff - 1) / (n + 1)) - 1) + cs;
  const chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));

  let m = opts.x0.map(clip);
  let sigma = opts.sigma0;
  const pc = new Array<number>(n).fill(0);
  const ps = new Array<number>(n).fill(0);
  let C = identity(n);
  let B = identity(n);
  let D = new Array<number>(n).fill(1);

  const trace: number[] = [];
  let best = { x: m.slice(), f: Infinity };
  let evals = 0;
  const evaluate = async (x: number[]) => {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('Aborted', 'AbortError');
    const fx = await f(x);
    evals++;
    if (fx < best.f) best = { x: x.slice(), f: fx };
    trace.push(best.f);
    return fx;
  };

  await evaluate(m);
  while (evals + lambda <= opts.budget) {
    // Sample λ points x = m + σ·B·D·z, repaired into the box.
    const pop: { x: number[]; y: number[]; f: number }[] = [];
    for (let k = 0; k < lambda; k++) {
      const z = Array.from({ length: n }, normal);
      const bdz = matVec(B, z.map((zi, i) => D[i] * zi));
      const x = m.map((mi, i) => clip(mi + sigma * bdz[i]));
      const y = x.map((xi, i) => (xi - m[i]) / sigma);
      pop.push({ x, y, f: await evaluate(x) });
    }
    pop.sort((a, b) => a.f - b.f);

    // Recombination: the new mean is the weighted mean of the μ best.
    const yw = new Array<number>(n).fill(0);
    for (let i = 0; i < mu; i++) for (let j = 0; j < n; j++) yw[j] += w[i] * pop[i].y[j];
    m = m.map((mi, j) => clip(mi + sigma * yw[j]));

    // Step-size path uses C^{-1/2}·yw = B·D^{-1}·Bᵀ·yw.
    const invSqrtY = matVec(B, matVec(transpose(B), yw).map((v, i) => v / D[i]));
    for (let j = 0; j < n; j++) ps[j] = (1 - cs) * ps[j] + Math.sqrt(cs * (2 - cs) * mueff) * invSqrtY[j];
    const psNorm = Math.hypot(...ps);
    const gen = (evals - 1) / lambda;
    const hsig = psNorm / Math.sqrt(1 - (1 - cs) ** (2 * gen)) / chiN < 1.4 + 2 / (n + 1) ? 1 : 0;
    for (let j = 0; j < n; j++) pc[j] = (1 - cc) * pc[j] + hsig * Math.sqrt(cc * (2 - cc) * mueff) * yw[j];

    // Covariance: rank-one (pc) and rank-μ (the selected steps) updates.
    const next = identity(n).map((row) => row.fill(0));
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        let rankMu = 0;
        for (let i = 0; i < mu; i++) rankMu += w[i] * pop[i].y[a] * pop[i].y[b];
        next[a][b] = (1 - c1 - cmu) * C[a][b] + c1 * (pc[a] * pc[b] + (1 - hsig) * cc * (2 - cc) * C[a][b]) + cmu * rankMu;
      }
    }
    C = next;
    sigma *= Math.exp((cs / damps) * (psNorm / chiN - 1));
    ({ vectors: B, values: D } = symmetricEigen(C));
    D = D.map((v) => Math.sqrt(Math.max(v, 1e-20)));
  }
  // Spend what is left of the budget around the final mean (fewer than λ evaluations).
  while (evals < opts.budget) {
    const z = Array.from({ length: n }, normal);
    const bdz = matVec(B, z.map((zi, i) => D[i] * zi));
    await evaluate(m.map((mi, i) => clip(mi + sigma * bdz[i])));
  }
  return { x: best.x, f: best.f, evaluations: evals, trace };
}

function gaussian(u: () => number): () => number {
  return () => {
    // Box–Muller; 1 - u() keeps the logarithm finite.
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    return r * Math.cos(2 * Math.PI * u());
  };
}

function identity(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

function transpose(a: number[][]): number[][] {
  return a[0].map((_, j) => a.map((row) => row[j]));
}

function matVec(a: number[][], x: number[]): number[] {
  return a.map((row) => row.reduce((s, v, j) => s + v * x[j], 0));
}

/** Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: C = V·diag(values)·Vᵀ (V's columns are the vectors). */
export function symmetricEigen(c: number[][]): { values: number[]; vectors: number[][] } {
  const n = c.length;
  const a = c.map((row) => row.slice());
  const v = identity(n);
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cos = 1 / Math.sqrt(t * t + 1);
        const sin = t * cos;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = cos * akp - sin * akq;
          a[k][q] = sin * akp + cos * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = cos * apk - sin * aqk;
          a[q][k] = sin * apk + cos * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p];
          const vkq = v[k][q];
          v[k][p] = cos * vkp - sin * vkq;
          v[k][q] = sin * vkp + cos * vkq;
        }
      }
    }
  }
  return { values: a.map((row, i) => row[i]), vectors: v };
}
