// A full disk: IndexedDB rejects the write transaction with a
// QuotaExceededError DOMException. This store fails exactly that way on
// writes (the one boundary that can't be made to fail on demand in the test
// browser) and keeps earlier data in memory, so the test can check nothing
// already stored is lost.
import { describe, expect, it } from 'vitest';
import type { UseStore } from 'idb-keyval';
import { listCustomizations, saveCustomization, savePool } from './store';
import { parseConfig } from '../engine/config';

function fullDiskStore(data: Map<IDBValidKey, unknown>, failWrites: () => boolean): UseStore {
  return (mode, callback) => {
    if (mode === 'readwrite' && failWrites()) return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
    // A tiny object store over the Map: enough for idb-keyval's get/set/entries.
    const req = <T>(value: T) => {
      const r = { result: value, onsuccess: null as null | (() => void), onerror: null, error: null } as unknown as IDBRequest<T>;
      queueMicrotask(() => (r as unknown as { onsuccess?: () => void }).onsuccess?.());
      return r;
    };
    const store = {
      put: (v: unknown, k: IDBValidKey) => (data.set(k, v), req(k)),
      get: (k: IDBValidKey) => req(data.get(k)),
      getAll: () => req([...data.values()]),
      getAllKeys: () => req([...data.keys()]),
      delete: (k: IDBValidKey) => (data.delete(k), req(undefined)),
      transaction: { oncomplete: null, onabort: null, onerror: null },
    } as unknown as IDBObjectStore;
    const out = callback(store);
    queueMicrotask(() => (store.transaction as unknown as { oncomplete?: () => void }).oncomplete?.());
    return Promise.resolve(out);
  };
}

describe('pool store on a full disk', () => {
  it('gives a quota-exceeded error that says what to do, and loses nothing already stored', async () => {
    const data = new Map<IDBValidKey, unknown>();
    let full = false;
    const store = fullDiskStore(data, () => full);
    await saveCustomization(store, { id: 'keep', name: 'Kept', pool: 'p', weights: { a: 1 }, mode: 'delta', tau: 0.1, topK: 0, created: '2026-01-01', examplesHash: 'x' });
    full = true;
    const base = parseConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, vocab_size: 10 });
    const err = await savePool(store, { id: 'p', baseModel: 'b', embedder: null, adapters: [] }, [], base).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'quota-exceeded' });
    expect((err as Error).message).toMatch(/full.*nothing already stored was lost/);
    expect((await listCustomizations(fullDiskStore(data, () => false))).map((c) => c.id)).toEqual(['keep']);
  });
});
