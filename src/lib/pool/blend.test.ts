import { describe, expect, it } from 'vitest';
import { isAppError } from '../errors';
import type { Blend } from '../engine/lora';
import { crayonBlend, lorahubBlend, noHarmCheck, singleBest, softmax, uniformBlend } from './blend';

const pool = [
  { id: 'a', indicator: [1, 0, 0] },
  { id: 'b', indicator: [0, 1, 0] },
  { id: 'c', indicator: [0.7, 0.7, 0] },
];

describe('Crayon blend weights', () => {
  it('are softmax(cosine / tau) of the examples\' mean against each indicator', () => {
    const r = crayonBlend([[2, 0, 0], [0, 0.0001, 0]], pool, { tau: 0.1 });
    const sims = [1, 0, Math.SQRT1_2].map((x) => x);
    expect(r.similarities.a).toBeCloseTo(sims[0], 3);
    expect(r.similarities.b).toBeCloseTo(0, 3);
    expect(r.similarities.c).toBeCloseTo(Math.SQRT1_2, 3);
    const want = softmax([r.similarities.a, r.similarities.b, r.similarities.c], 0.1);
    expect(r.weights.a).toBeCloseTo(want[0], 9);
    expect(r.weights.c).toBeCloseTo(want[2], 9);
    expect(Object.values(r.weights).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    expect(r.blend.mode).toBe('delta');
  });

  it('sharpen as tau falls and flatten as it rises', () => {
    const sharp = crayonBlend([[1, 0.1, 0]], pool, { tau: 0.01 }).weights;
    const flat = crayonBlend([[1, 0.1, 0]], pool, { tau: 100 }).weights;
    expect(sharp.a).toBeGreaterThan(0.99);
    expect(Math.max(...Object.values(flat)) - Math.min(...Object.values(flat))).toBeLessThan(0.01);
  });

  it('keep the top k renormalized, and leave the rest out of the blend', () => {
    const r = crayonBlend([[1, 0.2, 0]], pool, { tau: 1, topK: 2, mode: 'factor' });
    expect(r.weights.b).toBe(0);
    expect(r.weights.a + r.weights.c).toBeCloseTo(1, 12);
    expect(Object.keys(r.blend.weights).sort()).toEqual(['a', 'c']);
    expect(r.blend.mode).toBe('factor');
  });

  it('reject a pool built for a different feature size, an empty example set and a bad tau', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isAppError(e) ? e.code : 'untyped';
      }
      return 'none';
    };
    expect(code(() => crayonBlend([[1, 2]], pool, { tau: 1 }))).toBe('incompatible-adapter');
    expect(code(() => crayonBlend([], pool, { tau: 1 }))).toBe('invalid-argument');
    expect(code(() => crayonBlend([[1, 0, 0]], pool, { tau: 0 }))).toBe('invalid-argument');
  });
});

describe('baselines', () => {
  it('single best puts all weight on the most similar adapter', () => {
    const r = singleBest([[0.6, 0.8, 0]], pool);
    expect(r.blend.weights).toEqual({ c: 1 });
  });

  it('uniform weighs every adapter 1/N', () => {
    expect(uniformBlend(pool).weights).toEqual({ a: 1 / 3, b: 1 / 3, c: 1 / 3 });
  });

  it('LoraHub searches factor-blend weights that lower the examples\' loss, within ±1.5, in 40 evaluations', async () => {
    // A stand-in loss with its minimum at a = 1.2, b = -0.4, c = 0 (what the few-shot loss would be for some pool).
    const target: Record<string, number> = { a: 1.2, b: -0.4, c: 0 };
    let calls = 0;
    const loss = async (b: Blend) => {
      calls++;
      expect(b.mode).toBe('factor');
      return Object.entries(target).reduce((s, [id, t]) => s + (b.weights[id] - t) ** 2, 0);
    };
    const r = await lorahubBlend(['a', 'b', 'c'], loss, { seed: 1 });
    expect(calls).toBe(40);
    const start = 1.2 ** 2 + 0.4 ** 2;
    expect(r.loss).toBeLessThan(start / 4);
    for (const w of Object.values(r.blend.weights)) expect(Math.abs(w)).toBeLessThanOrEqual(1.5);
    expect(r.blend.weights.a).toBeGreaterThan(0.5);
  });
});

describe('The no-harm check', () => {
  const candidate: Blend = { mode: 'delta', weights: { a: 0.7, b: 0.3 } };

  it('keeps the blend when it lowers the examples\' loss, and says both losses', async () => {
    const seen: (Blend | null)[] = [];
    const r = await noHarmCheck(candidate, async (b) => (seen.push(b), b ? 0.8 : 1.2));
    expect(r).toEqual({ blend: candidate, kept: true, baseLoss: 1.2, blendLoss: 0.8 });
    expect(seen).toEqual([null, candidate]);
  });

  it('falls back to the base model when the blend raises it', async () => {
    const r = await noHarmCheck(candidate, async (b) => (b ? 2.5 : 1.2));
    expect(r.blend).toBeNull();
    expect(r.kept).toBe(false);
    expect(r.blendLoss).toBe(2.5);
  });

  it('rejects a loss that is not a number', async () => {
    const err = await noHarmCheck(candidate, async (b) => (b ? Number.NaN : 1)).catch((e) => e);
    expect(isAppError(err) && err.code).toBe('invalid-argument');
  });
});
