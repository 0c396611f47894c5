// A structural fuzz of adapter and pool import (2,000 cases from a fixed
// seed, src/lib/pool/testing/fuzz.ts) against a populated store: every case
// ends in a typed AppError or is accepted and reads back clean; after every
// rejection the store is byte for byte what it was.
import { describe, expect, it } from 'vitest';
import { structuralFuzz } from './testing/fuzz';
import { worldFuzzInput } from './testing/world-input';

describe('structural fuzz of pool and adapter import', () => {
  it('2,000 broken inputs against a populated store: all typed or accepted clean, none untyped, the store unchanged after every rejection', async () => {
    const r = await structuralFuzz(worldFuzzInput(), 2000);
    expect(r.failures).toEqual([]);
    expect(r.untyped).toBe(0);
    expect(r.storeChanged).toBe(0);
    expect(r.typed).toBeGreaterThan(1000);
    expect(r.accepted).toBeGreaterThan(0); // mutations that break nothing that matters are let in, and read back clean
    expect(Object.keys(r.byCode).sort()).toEqual(expect.arrayContaining(['bad-format', 'incompatible-adapter', 'invalid-argument']));
  }, 120_000);
});
