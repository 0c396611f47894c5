// What the store refuses, and how it reads back what was damaged in storage:
// each harm a fuzz found accepted before (lora_alpha 1e30, weights of 3.4e38,
// duplicate, non-string or ':' ids, garbage or null indicators, a silent
// overwrite, null entries) is a typed error that names it; a damaged record
// is reported with its key, never thrown, and can be deleted.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { deleteDamaged, exportPool, listCustomizations, loadPool, parsePoolFile, readCustomizations, readPools, savePool, addAdapters, saveCustomization } from './store';
import { memoryStore } from './testing/memory-store';
import { worldFuzzInput } from './testing/world-input';

const input = worldFuzzInput();
const { base, manifest, adapters } = input;
const two = { ...manifest, id: 'two', adapters: manifest.adapters.slice(0, 2) };
const twoFiles = adapters.slice(0, 2);

async function populated() {
  const data = new Map<IDBValidKey, unknown>();
  const store = memoryStore(data);
  await savePool(store, manifest, adapters, base);
  await saveCustomization(store, input.customization);
  return { data, store };
}
const reject = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return `${(e as AppError).code}: ${(e as AppError).message}`;
  }
  throw new Error('accepted');
};
/** A pool file whose header JSON was changed by `edit`. */
function fileWith(edit: (h: any) => void): Uint8Array {
  const f = exportPool(two, twoFiles);
  const n = Number(new DataView(f.buffer).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(f.subarray(8, 8 + n)));
  edit(h);
  const enc = new TextEncoder().encode(JSON.stringify(h));
  const out = new Uint8Array(8 + enc.length + f.length - 8 - n);
  new DataView(out.buffer).setBigUint64(0, BigInt(enc.length), true);
  out.set(enc, 8);
  out.set(f.subarray(8 + n), 8 + enc.length);
  return out;
}

describe('the store refuses what would do harm, with typed errors', () => {
  it('null headers and null entries', async () => {
    expect(await reject(() => parsePoolFile(fileWith((h) => (h.manifest = null))))).toMatch(/^bad-format: .*manifest.*not an object/);
    expect(await reject(() => parsePoolFile(fileWith((h) => (h.adapters = [null, h.adapters[1]]))))).toMatch(/^bad-format: .*adapter entry 0 is not an object/);
    expect(await reject(() => parsePoolFile(fileWith((h) => (h.manifest.adapters[0] = null))))).toMatch(/^bad-format: .*adapter 0 is null/);
    const nullHeader = new Uint8Array(12);
    new DataView(nullHeader.buffer).setBigUint64(0, 4n, true);
    nullHeader.set(new TextEncoder().encode('null'), 8);
    expect(await reject(() => parsePoolFile(nullHeader))).toMatch(/^bad-format: .*header is not an object/);
  });

  it('a scale of 1e30 and weights of 3.4e38', async () => {
    const { store } = await populated();
    const alpha = { ...twoFiles[0], config: { ...(twoFiles[0].config as object), lora_alpha: 1e30 } };
    expect(await reject(savePool(store, two, [alpha, twoFiles[1]], base))).toMatch(/^incompatible-adapter: .*scale \(lora_alpha \/ r\) of 1\.25e\+29, outside ±1000/);
    const huge = twoFiles[0].weights.slice();
    const at = 8 + Number(new DataView(huge.buffer).getBigUint64(0, true));
    new DataView(huge.buffer).setFloat32(at + 64, 3.4e38, true);
    expect(await reject(savePool(store, two, [{ ...twoFiles[0], weights: huge }, twoFiles[1]], base))).toMatch(/^incompatible-adapter: .*magnitude 3\.40e\+38, outside ±1000/);
  });

  it('duplicate, non-string and ":" ids, and garbage or null indicators', async () => {
    const { store } = await populated();
    const m = (edit: (x: any) => void) => {
      const x = structuredClone(two);
      edit(x);
      return x;
    };
    expect(await reject(savePool(store, m((x) => (x.adapters[1].id = x.adapters[0].id)), twoFiles, base))).toMatch(/lists adapter "cluster-0" twice/);
    expect(await reject(savePool(store, m((x) => (x.adapters[0].id = 7)), twoFiles, base))).toMatch(/id is a number/);
    expect(await reject(savePool(store, m((x) => (x.id = 'a:b')), twoFiles, base))).toMatch(/id "a:b" is not a name/);
    expect(await reject(savePool(store, m((x) => (x.adapters[0].indicator = null)), twoFiles, base))).toMatch(/indicator is null/);
    expect(await reject(savePool(store, m((x) => (x.adapters[0].indicator = ['a', 2])), twoFiles, base))).toMatch(/indicator's value 0 is "a"/);
    expect(await reject(savePool(store, m((x) => (x.adapters[0].indicator = [1, 2])), twoFiles, base))).toMatch(/indicator of 2 values, the others 128|the others 2/);
    expect(await reject(addAdapters(store, manifest, [{ adapter: { ...twoFiles[0], id: 'new:one' }, indicator: [] }], base))).toMatch(/not a name/);
    expect(await reject(addAdapters(store, manifest, [{ adapter: { ...twoFiles[0], id: 'new' }, indicator: [NaN] }], base))).toMatch(/not a finite number/);
  });

  it('overwriting a pool only when told to', async () => {
    const { store } = await populated();
    const again = { ...manifest, adapters: manifest.adapters.slice(0, 2) };
    const e = await savePool(store, again, twoFiles, base).catch((x: AppError) => x);
    expect(e).toMatchObject({ code: 'invalid-argument', details: { exists: true, pool: manifest.id } });
    expect((await loadPool(store, manifest.id)).adapters).toHaveLength(8);
    await savePool(store, again, twoFiles, base, { overwrite: true });
    const replaced = await loadPool(store, manifest.id);
    expect(replaced.adapters.map((a) => a.id)).toEqual(['cluster-0', 'cluster-1']);
  });
});

describe('stored data is checked again on read', () => {
  it('a damaged manifest, adapter or assistant is reported with its key, never thrown, and can be deleted', async () => {
    const { data, store } = await populated();
    data.set('pool:broken', { id: 'broken', baseModel: 'device', adapters: [{ id: 'x', indicator: null }] });
    data.set('adapter:broken:x', { id: 'x', config: {}, weights: new Uint8Array(4) });
    data.set('cz:bad', { id: 'bad', name: 'Bad', weights: { a: 'NaN' } });
    data.set(`adapter:${manifest.id}:cluster-3`, null);
    const { pools, damaged } = await readPools(store);
    expect(pools.map((p) => p.id)).toEqual([manifest.id]);
    expect(damaged).toEqual([{ key: 'pool:broken', what: 'Pool broken', reason: expect.stringMatching(/indicator is null/) }]);
    expect((await readCustomizations(store)).damaged.map((d) => d.key)).toEqual(['cz:bad']);
    expect((await listCustomizations(store)).map((c) => c.id)).toEqual(['cz-kept']);
    expect(await reject(loadPool(store, manifest.id))).toMatch(/^bad-format: Stored adapter "cluster-3" of pool "reference-device-pool": is null, not an adapter record/);
    await deleteDamaged(store, 'pool:broken');
    await deleteDamaged(store, 'cz:bad');
    expect([...data.keys()].filter((k) => String(k).includes('broken') || k === 'cz:bad')).toEqual([]);
    expect((await readPools(store)).damaged).toEqual([]);
  });
});
