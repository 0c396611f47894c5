import { describe, expect, it } from 'vitest';
import { centroid, cosine, decide, needsConfidence, type Thresholds } from './policy';

const th: Thresholds = { scope: 0.6, mcConfidence: 0.5, freeConfidence: -1.5 };

describe('routing decision', () => {
  it('local-only always answers on the device, whatever the signals', () => {
    const d = decide('local-only', th, { scope: 0.1, confidence: { kind: 'mc', topProb: 0.2 } });
    expect(d).toMatchObject({ route: 'device', reason: 'policy-local-only' });
  });

  it('server-only sends everything to the server, and falls back to the device when none is available', () => {
    expect(decide('server-only', th, { scope: 0.99 })).toMatchObject({ route: 'server', customizedServer: true });
    expect(decide('server-only', th, { scope: 0.99 }, false)).toMatchObject({ route: 'device', reason: 'server-unavailable' });
  });

  it('auto sends out-of-scope queries to the server before looking at confidence', () => {
    const d = decide('auto', th, { scope: 0.3, confidence: { kind: 'mc', topProb: 0.99 } });
    // Not the customized task: the server's general model answers, not the customization.
    expect(d).toMatchObject({ route: 'server', reason: 'out-of-scope', customizedServer: false, scores: { scope: 0.3, confidence: 0.99 } });
    expect(needsConfidence('auto', th, 0.3)).toBe(false);
    expect(needsConfidence('auto', th, 0.9)).toBe(true);
  });

  it('auto escalates low-confidence answers (a cascade) and keeps confident in-scope ones', () => {
    // The customized task, too hard for the device: the server answers with the same blend.
    expect(decide('auto', th, { scope: 0.9, confidence: { kind: 'mc', topProb: 0.4 } })).toMatchObject({ route: 'server', reason: 'low-confidence', customizedServer: true });
    expect(decide('auto', th, { scope: 0.9, confidence: { kind: 'mc', topProb: 0.7 } })).toMatchObject({ route: 'device', reason: 'in-scope-confident', customizedServer: false });
    expect(decide('auto', th, { scope: 0.9, confidence: { kind: 'free', meanLogprob: -2.3 } }).route).toBe('server');
    expect(decide('auto', th, { scope: 0.9, confidence: { kind: 'free', meanLogprob: -0.4 } }).route).toBe('device');
  });

  it('auto without a customization judges by confidence alone', () => {
    expect(decide('auto', th, { confidence: { kind: 'mc', topProb: 0.9 } })).toMatchObject({ route: 'device', reason: 'no-customization' });
    expect(decide('auto', th, { confidence: { kind: 'mc', topProb: 0.3 } }).route).toBe('server');
  });

  it('auto stays on the device with a reason when the server is unavailable', () => {
    expect(decide('auto', th, { scope: 0.1 }, false)).toMatchObject({ route: 'device', reason: 'server-unavailable' });
  });
});

describe('similarity helpers', () => {
  it('cosine is 1 for parallel, 0 for orthogonal, -1 for opposite vectors', () => {
    expect(cosine([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(cosine([1, 0], [0, 5])).toBe(0);
    expect(cosine([1, -1], [-1, 1])).toBeCloseTo(-1, 12);
    expect(cosine([0, 0], [1, 1])).toBe(0);
    expect(() => cosine([1], [1, 2])).toThrow(RangeError);
  });

  it('centroid is the element-wise mean', () => {
    expect(Array.from(centroid([[1, 2], [3, 6]]))).toEqual([2, 4]);
  });
});
