import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors';
import { cmaes, symmetricEigen } from './cmaes';

const sphere = (c: number[]) => (x: number[]) => x.reduce((s, v, i) => s + (v - c[i]) ** 2, 0);
const rosenbrock = (x: number[]) => x.slice(0, -1).reduce((s, v, i) => s + 100 * (x[i + 1] - v * v) ** 2 + (1 - v) ** 2, 0);

describe('CMA-ES', () => {
  it('finds the minimum of a shifted sphere in 8 dimensions', async () => {
    const c = [0.3, -0.7, 1.1, 0, -0.2, 0.5, 0.9, -1.2];
    const r = await cmaes(sphere(c), { x0: new Array(8).fill(0), sigma0: 0.5, budget: 2000, seed: 1 });
    expect(r.f).toBeLessThan(1e-6);
    r.x.forEach((v, i) => expect(v).toBeCloseTo(c[i], 3));
  });

  it('follows the curved valley of the Rosenbrock function (needs the covariance to adapt)', async () => {
    const r = await cmaes(rosenbrock, { x0: [-1, 1, -1, 1], sigma0: 0.5, budget: 6000, seed: 2 });
    expect(r.f).toBeLessThan(1e-4);
  });

  it('spends exactly the budget, keeps every point inside the bounds and never worsens its best', async () => {
    const seen: number[][] = [];
    const f = (x: number[]) => (seen.push(x), sphere([5, 5, 5])(x));
    const r = await cmaes(f, { x0: [0, 0, 0], sigma0: 1, budget: 40, lower: -1.5, upper: 1.5, seed: 3 });
    expect(r.evaluations).toBe(40);
    expect(seen).toHaveLength(40);
    for (const x of seen) for (const v of x) expect(Math.abs(v)).toBeLessThanOrEqual(1.5);
    for (let i = 1; i < r.trace.length; i++) expect(r.trace[i]).toBeLessThanOrEqual(r.trace[i - 1]);
    expect(r.f).toBeLessThan(sphere([5, 5, 5])([0, 0, 0])); // it moved toward the corner
  });

  it('repeats itself for a seed, and differs for another', async () => {
    const run = (seed: number) => cmaes(rosenbrock, { x0: [0, 0], sigma0: 0.3, budget: 50, seed });
    expect((await run(7)).x).toEqual((await run(7)).x);
    expect((await run(7)).x).not.toEqual((await run(8)).x);
  });

  it('stops when aborted and rejects bad options with a typed error', async () => {
    const ac = new AbortController();
    let n = 0;
    const p = cmaes((x) => (++n === 5 && ac.abort(), x[0] ** 2), { x0: [1], sigma0: 1, budget: 100, signal: ac.signal });
    await expect(p).rejects.toThrow();
    expect(n).toBe(5);
    const bad = await cmaes((x) => x[0], { x0: [], sigma0: 1, budget: 10 }).catch((e) => e);
    expect(isAppError(bad) && bad.code).toBe('invalid-argument');
  });
});

describe('symmetric eigen-decomposition', () => {
  it('rebuilds the matrix from its eigenvalues and orthonormal vectors', () => {
    const c = [[4, 1, 0.5], [1, 3, 0.2], [0.5, 0.2, 2]];
    const { values, vectors: v } = symmetricEigen(c);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        const back = values.reduce((s, l, k) => s + v[a][k] * l * v[b][k], 0);
        expect(back).toBeCloseTo(c[a][b], 10);
        const dot = v.reduce((s, row) => s + row[a] * row[b], 0);
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 10);
      }
    }
  });
});
