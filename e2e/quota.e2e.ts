// Storage full in the middle of a write, in Chromium:
// - a model download into Cache Storage under a real quota (DevTools'
//   Storage.overrideQuotaForOrigin, which Cache Storage honours): the download
//   fails as quota-exceeded once the weights no longer fit, nothing of it stays,
//   and a model downloaded before is untouched;
// - a pool import into real IndexedDB whose k-th write fails. Chromium's quota
//   override does not make IndexedDB writes fail here (measured: 6 MB written
//   under a 2 MB quota), so the k-th put of the write transaction aborts it and
//   throws a QuotaExceededError, as a full disk does; the rollback is real
//   IndexedDB's. For every k the import is a typed quota-exceeded error and the
//   store is byte for byte what it was.
import { describe, expect, inject, it } from 'vitest';
import { statSync } from 'node:fs';
import { relative } from 'node:path';
import { worldDir } from '../training/world-dir';
import { useBrowser } from './harness';

const worldPath = '/' + relative(process.cwd(), worldDir());

describe('storage full mid-write', () => {
  const session = useBrowser();

  it('a model download that runs out of quota keeps nothing of itself and loses no model stored before', async () => {
    const { context } = session();
    const page = await session().libPage();
    const origin = new URL(page.url()).origin;
    const models = inject('modelsURL');
    const first = await page.evaluate(async (models) => {
      const d = await load('/src/lib/models/download.ts');
      return (await d.downloadModel({ fetch: fetch.bind(globalThis), caches }, `${models}/m/`)).bytes as number;
    }, models);
    expect(first).toBeGreaterThan(3_000_000);
    // Room for about 1 MB more: the next copy's small files fit, its 3.5 MB of weights do not.
    const { usage } = await page.evaluate(() => navigator.storage.estimate());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: (usage ?? 0) + 1_000_000 });
    const out = await page.evaluate(async (models) => {
      const d = await load('/src/lib/models/download.ts');
      const io = { fetch: fetch.bind(globalThis), caches };
      const err = await d.downloadModel(io, `${models}/slow/`).then(() => null, (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }));
      const cache = await caches.open(d.MODEL_CACHE);
      const urls = (await cache.keys()).map((r: Request) => r.url);
      const kept = await (await cache.match(`${models}/m/model.safetensors`))?.arrayBuffer();
      return { err, urls, listed: (await d.listDownloaded(io)).map((m: { base: string }) => m.base), keptBytes: kept?.byteLength ?? 0 };
    }, models);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    expect(out.err).toEqual({ code: 'quota-exceeded', message: expect.stringMatching(/Storage on this device is full.*nothing of it was kept/) });
    expect(out.urls.filter((u) => u.includes('/slow/'))).toEqual([]);
    expect(out.listed).toEqual([`${models}/m/`]);
    expect(out.keptBytes).toBe(statSync(`${worldDir()}/device/model.safetensors`).size);
  });

  it('a pool import whose k-th write fails is a typed quota-exceeded error and leaves the store byte for byte as it was, for every k', async () => {
    const page = await session().libPage();
    const out = await page.evaluate(async (worldPath) => {
      const store = await load('/src/lib/pool/store.ts');
      const { parseConfig } = await load('/src/lib/engine/config.ts');
      const { createStore, entries } = await load('/node_modules/idb-keyval/dist/index.js');
      const base = parseConfig(await (await fetch(worldPath + '/device/config.json')).json());
      const manifest = await (await fetch(worldPath + '/device-pool/pool.json')).json();
      const adapters = [];
      for (const a of manifest.adapters) {
        const dir = worldPath + '/device-pool/' + a.path;
        adapters.push({ id: a.id, config: await (await fetch(dir + '/adapter_config.json')).json(), weights: new Uint8Array(await (await fetch(dir + '/adapter_model.safetensors')).arrayBuffer()) });
      }
      const db = createStore('crayon-quota-test', 'kv');
      // A populated store: the world's pool and a saved assistant.
      await store.savePool(db, manifest, adapters, base);
      await store.saveCustomization(db, { id: 'kept', name: 'Kept', pool: manifest.id, weights: { [manifest.adapters[0].id]: 1 }, mode: 'delta', tau: 0.1, topK: 0, created: '2026-12-01', examplesHash: 'h' });
      const digest = async () => {
        const all = (await entries(db)).sort(([a]: [string], [b]: [string]) => a.localeCompare(b));
        const parts: Uint8Array[] = [];
        for (const [k, v] of all) {
          parts.push(new TextEncoder().encode(`${k}=${JSON.stringify(v, (key, x) => (key === 'weights' ? undefined : x))};`));
          if (v?.weights instanceof Uint8Array) parts.push(v.weights);
        }
        const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) (joined.set(p, at), (at += p.length));
        return [...new Uint8Array(await crypto.subtle.digest('SHA-256', joined))].map((b) => b.toString(16).padStart(2, '0')).join('') + `/${all.length}`;
      };
      // The store's k-th put (1-based) in a write transaction aborts it and throws as a full disk does.
      const failingAt = (k: number) => (mode: IDBTransactionMode, cb: (os: IDBObjectStore) => unknown) =>
        db(mode, (os: IDBObjectStore) => {
          if (mode !== 'readwrite') return cb(os);
          let n = 0;
          const proxy = new Proxy(os, {
            get(t, p) {
              if (p === 'put') {
                return (v: unknown, key: IDBValidKey) => {
                  if (++n === k) {
                    t.transaction.abort();
                    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
                  }
                  return t.put(v, key);
                };
              }
              const x = (t as unknown as Record<string | symbol, unknown>)[p];
              return typeof x === 'function' ? x.bind(t) : x;
            },
          });
          return cb(proxy);
        });
      const before = await digest();
      const imported = store.parsePoolFile(store.exportPool({ ...manifest, id: 'imported' }, adapters));
      const writes = 1 + adapters.length;
      const results: string[] = [];
      for (let k = 1; k <= writes; k++) {
        const r = await store.savePool(failingAt(k), imported.manifest, imported.adapters, base).then(() => 'saved', (e: { code: string }) => e.code);
        results.push(`${r} ${(await digest()) === before ? 'same' : 'CHANGED'}`);
      }
      // Adding one adapter to the stored pool: the manifest and the adapter in one transaction.
      const extra = { ...adapters[0], id: 'extra' };
      for (let k = 1; k <= 2; k++) {
        const r = await store.addAdapters(failingAt(k), manifest, [{ adapter: extra, indicator: [] }], base).then(() => 'saved', (e: { code: string }) => e.code);
        results.push(`add ${r} ${(await digest()) === before ? 'same' : 'CHANGED'}`);
      }
      // With room for every write, the same import lands whole.
      await store.savePool(failingAt(writes + 1), imported.manifest, imported.adapters, base);
      const landed = (await store.loadPool(db, 'imported')).adapters.length;
      return { results, writes, landed };
    }, worldPath);
    expect(out.writes).toBe(9);
    expect(out.results).toEqual([...Array(9).fill('quota-exceeded same'), 'add quota-exceeded same', 'add quota-exceeded same']);
    expect(out.landed).toBe(8);
  });
});
