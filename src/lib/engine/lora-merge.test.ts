// Merging a blend into a projection's weights, checked against the formula
// written out in double precision and against the same blend applied unmerged;
// then unmerging. The ranks with weight stack to 25 (3 + 8 + 14), not a multiple
// of the eight rank rows the merge takes per pass; a fourth adapter weighs 0.
import { describe, expect, it } from 'vitest';
import { LoraSlot, type Blend, type LoraPart } from './lora';
import { matvec } from './ops';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

const out = 37;
const inp = 29;
const rand = rng(7);
const fill = (n: number) => Float32Array.from({ length: n }, rand);
const parts: LoraPart[] = [3, 8, 14, 5].map((r, i) => ({ adapterId: `a${i}`, r, scale: 0.5 + i, a: fill(r * inp), bt: fill(r * out) }));
const slot = new LoraSlot(out, inp);
slot.parts.push(...parts);
const w0 = fill(out * inp);
const blend: Blend = { mode: 'merged', weights: { a0: 0.7, a1: -0.2, a2: 0.05, a3: 0 } };

/** W + sum_i w_i s_i B_i A_i, each entry summed in double. */
function reference(): Float64Array {
  const w = Float64Array.from(w0);
  for (const p of parts) {
    const c = (blend.weights[p.adapterId] ?? 0) * p.scale;
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) {
      let d = 0;
      for (let k = 0; k < p.r; k++) d += p.bt[k * out + o] * p.a[k * inp + i];
      w[o * inp + i] += c * d;
    }
  }
  return w;
}

describe('LoraSlot.mergeInto', () => {
  it('adds the blend to the weights as the formula says, within f32 rounding', () => {
    const w = w0.slice();
    slot.mergeInto(w, blend, 1);
    const ref = reference();
    let worst = 0;
    for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(w[j] - ref[j]) / Math.max(1, Math.abs(ref[j])));
    expect(worst).toBeLessThan(1e-6);
    expect(Math.max(...w.map((x, j) => Math.abs(x - w0[j])))).toBeGreaterThan(0.1); // it did change them
  });

  it('gives the same outputs as the blend applied unmerged', () => {
    const w = w0.slice();
    slot.mergeInto(w, blend, 1);
    slot.plan({ ...blend, mode: 'delta' });
    const x = fill(inp);
    const merged = new Float32Array(out);
    matvec(merged, w, x, out, inp);
    const unmerged = new Float32Array(out);
    matvec(unmerged, w0, x, out, inp);
    slot.apply(x, unmerged);
    slot.plan(null);
    merged.forEach((y, o) => expect(y).toBeCloseTo(unmerged[o], 4));
  });

  it('takes the blend back out to within f32 rounding of the weights before', () => {
    const w = w0.slice();
    for (let n = 0; n < 20; n++) {
      slot.mergeInto(w, blend, 1);
      slot.mergeInto(w, blend, -1);
    }
    for (let j = 0; j < w.length; j++) expect(Math.abs(w[j] - w0[j])).toBeLessThan(1e-5);
  });
});
