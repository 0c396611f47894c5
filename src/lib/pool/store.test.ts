// A full disk: IndexedDB rejects the write transaction with a
// QuotaExceededError DOMException. memoryStore fails exactly that way on
// writes (the one boundary that can't be made to fail on demand in the test
// browser) and keeps earlier data, so the test can check nothing already
// stored is lost.
import { describe, expect, it } from 'vitest';
import { listCustomizations, saveCustomization, savePool } from './store';
import { parseConfig } from '../engine/config';
import { memoryStore } from './testing/memory-store';

describe('pool store on a full disk', () => {
  it('gives a quota-exceeded error that says what to do, and loses nothing already stored', async () => {
    const data = new Map<IDBValidKey, unknown>();
    let full = false;
    const store = memoryStore(data, () => full);
    await saveCustomization(store, { id: 'keep', name: 'Kept', pool: 'p', weights: { a: 1 }, mode: 'delta', tau: 0.1, topK: 0, created: '2026-01-01', examplesHash: 'x' });
    full = true;
    const base = parseConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10 });
    const err = await savePool(store, { id: 'p', baseModel: 'b', embedder: null, adapters: [] }, [], base).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'quota-exceeded' });
    expect((err as Error).message).toMatch(/full.*nothing already stored was lost/);
    expect((await listCustomizations(memoryStore(data, () => false))).map((c) => c.id)).toEqual(['keep']);
  });
});
