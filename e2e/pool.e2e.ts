// The adapter pool in real IndexedDB in Chromium: a whole pool is saved in
// one transaction, survives export and import byte for byte, rejects an
// incompatible adapter without touching the store. (A full disk is tested in
// store.test.ts: Chromium's DevTools quota override did not make IndexedDB
// writes fail here, so that path uses a store that fails like a full one.)
import { describe, expect, it } from 'vitest';
import { relative } from 'node:path';
import { worldDir } from '../training/world-dir';
import { useBrowser } from './harness';

const worldPath = '/' + relative(process.cwd(), worldDir());

// Runs in the page: loads the reference pool's files and the base config.
const setup = `async (worldPath) => {
  const store = await load('/src/lib/pool/store.ts');
  const { parseConfig } = await load('/src/lib/engine/config.ts');
  const { createStore, keys } = await load('/node_modules/idb-keyval/dist/index.js');
  const base = parseConfig(await (await fetch(worldPath + '/device/config.json')).json());
  const manifest = await (await fetch(worldPath + '/device-pool/pool.json')).json();
  const adapters = [];
  for (const a of manifest.adapters) {
    const dir = worldPath + '/device-pool/' + a.path;
    adapters.push({ id: a.id, config: await (await fetch(dir + '/adapter_config.json')).json(), weights: new Uint8Array(await (await fetch(dir + '/adapter_model.safetensors')).arrayBuffer()) });
  }
  return { store, base, manifest, adapters, db: createStore('crayon-pool-test', 'kv'), keys };
}`;

describe('adapter pool store (IndexedDB)', () => {
  const session = useBrowser();

  it('saves a pool atomically, exports it to one file and imports it back identically', async () => {
    const page = await session().libPage();
    const out = await page.evaluate(async ([worldPath, setupSrc]) => {
      const { store, base, manifest, adapters, db } = await (0, eval)(setupSrc)(worldPath);
      await store.savePool(db, manifest, adapters, base);
      const listed = await store.listPools(db);
      const file = store.exportPool(manifest, (await store.loadPool(db, manifest.id)).adapters);
      await store.deletePool(db, manifest.id);
      const afterDelete = (await store.listPools(db)).length;
      const back = store.parsePoolFile(file);
      await store.savePool(db, back.manifest, back.adapters, base);
      const again = await store.loadPool(db, manifest.id);
      const same = again.adapters.every((a: { weights: Uint8Array }, i: number) => a.weights.length === adapters[i].weights.length && a.weights.every((b: number, j: number) => b === adapters[i].weights[j]));
      return { listed: listed.map((p: { id: string }) => p.id), afterDelete, same, sameManifest: JSON.stringify(again.manifest) === JSON.stringify(manifest) };
    }, [worldPath, setup] as const);
    expect(out.listed).toHaveLength(1);
    expect(out.afterDelete).toBe(0);
    expect(out.same).toBe(true);
    expect(out.sameManifest).toBe(true);
  });

  it('rejects an adapter that does not fit the base model and leaves the store unchanged', async () => {
    const page = await session().libPage();
    const out = await page.evaluate(async ([worldPath, setupSrc]) => {
      const { store, base, manifest, adapters, db, keys } = await (0, eval)(setupSrc)(worldPath);
      const before = (await keys(db)).length;
      const broken = adapters.map((a: object, i: number) => (i === 3 ? { ...a, config: { ...(a as { config: object }).config, r: 4 } } : a));
      const code = await store.savePool(db, manifest, broken, base).then(() => 'saved', (e: { code: string; message: string }) => `${e.code}: ${e.message}`);
      const truncated = await Promise.resolve().then(() => store.parsePoolFile(store.exportPool(manifest, adapters).slice(0, 5000))).then(() => 'parsed', (e: { code: string }) => e.code);
      return { code, truncated, before, after: (await keys(db)).length };
    }, [worldPath, setup] as const);
    expect(out.code).toMatch(/^incompatible-adapter: .*rank 4/);
    expect(out.truncated).toBe('truncated');
    expect(out.after).toBe(out.before);
  });
});
