// The adapter pool on the device, in IndexedDB through idb-keyval (the
// UseStore is passed in): pool manifests with their indicators, adapters
// (PEFT config + safetensors bytes), and saved customizations. A whole pool is
// written in one transaction, so an interrupted import leaves nothing half
// written; a full disk is a typed `quota-exceeded` error and loses nothing.
// Everything is checked (validate.ts) on the way in and again on the way out:
// a damaged record is reported as damaged, with its key, and can be deleted.
import { del, delMany, get, getMany, keys, promisifyRequest, setMany, type UseStore } from 'idb-keyval';
import { AppError, messageOf } from '../errors';
import type { ModelConfig } from '../engine/config';
import { checkAdapter, checkCustomization, checkId, checkIndicator, checkManifest, checkStoredAdapter, isObject } from './validate';

export interface PoolManifest {
  id: string;
  baseModel: string;
  embedder: unknown;
  adapters: { id: string; indicator: number[] }[];
}

export interface StoredAdapter {
  id: string;
  config: unknown;
  weights: Uint8Array; // adapter_model.safetensors
}

export interface Customization {
  id: string;
  name: string;
  pool: string;
  weights: Record<string, number>;
  mode: 'delta' | 'factor';
  tau: number;
  topK: number;
  created: string;
  examplesHash: string;
  /** The examples' mean feature: the scope reference for routing (stays on the device). */
  centroid?: number[];
  /** Kept only if the user asks; never sent anywhere. */
  examples?: { input: string; output: string }[];
}

const poolKey = (id: string) => `pool:${id}`;
const adapterKey = (pool: string, id: string) => `adapter:${pool}:${id}`;
const czKey = (id: string) => `cz:${id}`;

function storageError(e: unknown, what: string): AppError {
  if (e instanceof AppError) return e;
  const name = (e as { name?: string })?.name;
  if (name === 'QuotaExceededError') return new AppError('quota-exceeded', `Storage on this device is full, so ${what} was not saved (nothing already stored was lost). Free some space, e.g. by deleting models or pools you no longer use.`);
  return new AppError('storage-error', `${what} failed in the browser's storage (${messageOf(e)}).`);
}

/** A stored record that fails its check on read: shown as damaged, with a delete button, never thrown at the page. */
export interface DamagedRecord {
  key: string;
  what: string;
  reason: string;
}

/**
 * Validates the manifest and every adapter against the base model, then writes the pool in one
 * transaction. A pool of the same id is replaced only with `overwrite` (its old adapters go in
 * the same transaction); otherwise it is a typed error with `details.exists`.
 */
export async function savePool(store: UseStore, manifest: PoolManifest, adapters: StoredAdapter[], base: ModelConfig, opts: { overwrite?: boolean } = {}): Promise<void> {
  checkManifest(manifest);
  if (!Array.isArray(adapters)) throw new AppError('bad-format', `Pool "${manifest.id}" comes with no list of adapter files.`);
  adapters.forEach((a, i) => checkStoredAdapter(a, `Pool "${manifest.id}", adapter file ${i}`));
  const files = new Map(adapters.map((a) => [a.id, a]));
  if (files.size !== adapters.length) throw new AppError('bad-format', `Pool "${manifest.id}" has two adapter files under one id.`);
  for (const a of manifest.adapters) if (!files.has(a.id)) throw new AppError('missing-file', `Pool "${manifest.id}" lists adapter "${a.id}" but its files are missing.`);
  if (files.size !== manifest.adapters.length) throw new AppError('bad-format', `Pool "${manifest.id}" has adapter files its manifest does not list.`);
  for (const a of adapters) checkAdapter(a, base); // typed errors naming what doesn't fit or is out of bounds
  const old = await get<unknown>(poolKey(manifest.id), store).catch((e: unknown) => Promise.reject(storageError(e, `pool "${manifest.id}"`)));
  if (old !== undefined && !opts.overwrite) {
    throw new AppError('invalid-argument', `A pool "${manifest.id}" is already on this device; it is replaced only if you confirm.`, { exists: true, pool: manifest.id });
  }
  const stale = old === undefined ? [] : (await keys(store)).filter((k) => String(k).startsWith(adapterKey(manifest.id, '')));
  try {
    await store('readwrite', (os) => {
      for (const k of stale) os.delete(k);
      os.put(manifest, poolKey(manifest.id));
      for (const a of adapters) os.put(a, adapterKey(manifest.id, a.id));
      return promisifyRequest(os.transaction);
    });
  } catch (e) {
    throw storageError(e, `pool "${manifest.id}"`);
  }
}

/** The values under keys that start with `prefix`, reading only those (not every adapter's weights). */
async function entriesWithPrefix(store: UseStore, prefix: string): Promise<[string, unknown][]> {
  const ks = (await keys(store)).filter((k) => String(k).startsWith(prefix));
  const vs = await getMany<unknown>(ks, store);
  return ks.map((k, i) => [String(k), vs[i]] as [string, unknown]).filter(([, v]) => v !== undefined);
}

const problem = (e: unknown) => (e instanceof AppError ? e.message : `unreadable (${messageOf(e)})`);

/** Every stored pool manifest, checked: the valid ones, and the damaged ones by key. */
export async function readPools(store: UseStore): Promise<{ pools: PoolManifest[]; damaged: DamagedRecord[] }> {
  const pools: PoolManifest[] = [];
  const damaged: DamagedRecord[] = [];
  for (const [key, v] of await entriesWithPrefix(store, 'pool:')) {
    try {
      const m = checkManifest(v);
      if (poolKey(m.id) !== key) throw new AppError('bad-format', `The record under ${key} is pool "${m.id}".`);
      pools.push(m);
    } catch (e) {
      damaged.push({ key, what: `Pool ${key.slice(5)}`, reason: problem(e) });
    }
  }
  return { pools, damaged };
}

export async function listPools(store: UseStore): Promise<PoolManifest[]> {
  return (await readPools(store)).pools;
}

export async function loadPool(store: UseStore, id: string): Promise<{ manifest: PoolManifest; adapters: StoredAdapter[] }> {
  const stored = await get<unknown>(poolKey(id), store);
  if (stored === undefined) throw new AppError('not-found', `No pool "${id}" on this device.`);
  const manifest = checkManifest(stored);
  return { manifest, adapters: await loadAdapters(store, id, manifest.adapters.map((a) => a.id)) };
}

/** Some adapters of a pool, files included, each checked as it is read. */
export async function loadAdapters(store: UseStore, poolId: string, ids: string[]): Promise<StoredAdapter[]> {
  const adapters = await getMany<unknown>(ids.map((a) => adapterKey(poolId, a)), store);
  return adapters.map((a, i) => {
    if (a === undefined) throw new AppError('storage-error', `Pool "${poolId}" is missing adapter "${ids[i]}" in storage.`);
    const checked = checkStoredAdapter(a, `Stored adapter "${ids[i]}" of pool "${poolId}"`);
    if (checked.id !== ids[i]) throw new AppError('bad-format', `Stored adapter "${ids[i]}" of pool "${poolId}" holds adapter "${checked.id}".`);
    return checked;
  });
}

/** Some adapters of a pool read in one batch, each checked on its own: the record, or the typed error that says why it is damaged. */
export async function inspectAdapters(store: UseStore, poolId: string, ids: string[]): Promise<(StoredAdapter | AppError)[]> {
  const got = await getMany<unknown>(ids.map((a) => adapterKey(poolId, a)), store);
  return got.map((a, i) => {
    try {
      if (a === undefined) throw new AppError('storage-error', `its files are missing from storage`);
      const checked = checkStoredAdapter(a, `Stored adapter "${ids[i]}"`);
      if (checked.id !== ids[i]) throw new AppError('bad-format', `the record holds adapter "${checked.id}"`);
      return checked;
    } catch (e) {
      return e instanceof AppError ? e : new AppError('storage-error', messageOf(e));
    }
  });
}

/** Deletes a pool and its adapters in one transaction; a damaged manifest goes too, with every adapter under its id. */
export async function deletePool(store: UseStore, id: string): Promise<void> {
  const ks = (await keys(store)).filter((k) => String(k) === poolKey(id) || String(k).startsWith(adapterKey(id, '')));
  if (ks.length) await delMany(ks, store);
}

/** Deletes a record that failed its check on read (a pool manifest takes its adapters with it). */
export async function deleteDamaged(store: UseStore, key: string): Promise<void> {
  if (key.startsWith('pool:')) return deletePool(store, key.slice(5));
  await del(key, store);
}

/**
 * Adds adapters to a pool (created if absent) in one transaction, after every
 * one is checked against the base model. An adapter without an indicator
 * (empty) is kept and can be blended by hand, but Crayon's similarity skips it.
 */
export async function addAdapters(store: UseStore, pool: Omit<PoolManifest, 'adapters'>, items: { adapter: StoredAdapter; indicator: number[] }[], base: ModelConfig): Promise<PoolManifest> {
  checkId(pool?.id, 'The pool', 'id');
  if (!Array.isArray(items) || !items.every(isObject)) throw new AppError('invalid-argument', 'The adapters to add are not a list of {adapter, indicator}.');
  for (const { adapter, indicator } of items) {
    checkId(adapter?.id, 'The adapter', 'id');
    checkIndicator(indicator, `Adapter "${adapter.id}"`);
    checkAdapter(adapter, base);
  }
  const stored = await get<unknown>(poolKey(pool.id), store);
  const current = stored === undefined ? { ...pool, adapters: [] } : checkManifest(stored);
  const taken = new Set(current.adapters.map((a) => a.id));
  for (const { adapter } of items) if (taken.has(adapter.id)) throw new AppError('invalid-argument', `Pool "${pool.id}" already has an adapter "${adapter.id}".`);
  const manifest: PoolManifest = checkManifest({ ...current, adapters: [...current.adapters, ...items.map((x) => ({ id: x.adapter.id, indicator: x.indicator }))] });
  try {
    await store('readwrite', (os) => {
      os.put(manifest, poolKey(pool.id));
      for (const { adapter } of items) os.put(adapter, adapterKey(pool.id, adapter.id));
      return promisifyRequest(os.transaction);
    });
  } catch (e) {
    throw storageError(e, `adapter${items.length > 1 ? 's' : ''} ${items.map((x) => `"${x.adapter.id}"`).join(', ')}`);
  }
  return manifest;
}

/** Removes one adapter from a pool: its manifest entry and its files, in one transaction. */
export async function deleteAdapter(store: UseStore, poolId: string, id: string): Promise<PoolManifest> {
  const stored = await get<unknown>(poolKey(poolId), store);
  if (stored === undefined) throw new AppError('not-found', `No pool "${poolId}" on this device.`);
  const current = checkManifest(stored);
  const manifest = { ...current, adapters: current.adapters.filter((a) => a.id !== id) };
  await store('readwrite', (os) => {
    os.put(manifest, poolKey(poolId));
    os.delete(adapterKey(poolId, id));
    return promisifyRequest(os.transaction);
  });
  return manifest;
}

export async function saveCustomization(store: UseStore, cz: Customization): Promise<void> {
  checkCustomization(cz);
  try {
    await setMany([[czKey(cz.id), cz]], store);
  } catch (e) {
    throw storageError(e, `assistant "${cz.name}"`);
  }
}

/** Every saved assistant, checked: the valid ones, and the damaged ones by key. */
export async function readCustomizations(store: UseStore): Promise<{ customizations: Customization[]; damaged: DamagedRecord[] }> {
  const customizations: Customization[] = [];
  const damaged: DamagedRecord[] = [];
  for (const [key, v] of await entriesWithPrefix(store, 'cz:')) {
    try {
      customizations.push(checkCustomization(v));
    } catch (e) {
      damaged.push({ key, what: `Saved assistant ${key.slice(3)}`, reason: problem(e) });
    }
  }
  return { customizations, damaged };
}

export async function listCustomizations(store: UseStore): Promise<Customization[]> {
  return (await readCustomizations(store)).customizations;
}

export async function deleteCustomization(store: UseStore, id: string): Promise<void> {
  await del(czKey(id), store);
}

/** Asks the browser to keep this site's storage (navigator.storage passed in). */
export async function requestPersistence(storage: StorageManager | undefined): Promise<boolean> {
  try {
    return (await storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}

// ---- one-file export: 8-byte LE header length, a JSON header, then each adapter's safetensors bytes ----

const FORMAT = 'crayon-pool';

export function exportPool(manifest: PoolManifest, adapters: StoredAdapter[]): Uint8Array {
  let offset = 0;
  const parts = adapters.map((a) => {
    const p = { id: a.id, config: a.config, offset, length: a.weights.byteLength };
    offset += a.weights.byteLength;
    return p;
  });
  const header = new TextEncoder().encode(JSON.stringify({ format: FORMAT, version: 1, manifest, adapters: parts }));
  const out = new Uint8Array(8 + header.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  out.set(header, 8);
  for (const [i, a] of adapters.entries()) out.set(a.weights, 8 + header.byteLength + parts[i].offset);
  return out;
}

export function parsePoolFile(bytes: Uint8Array): { manifest: PoolManifest; adapters: StoredAdapter[] } {
  const bad = (why: string) => new AppError('bad-format', `This is not a Crayon pool file: ${why}.`);
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 8) throw new AppError('truncated', 'The pool file is too short.');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.byteLength) throw new AppError('truncated', 'The pool file ends inside its header.');
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad('the header is not JSON');
  }
  if (!isObject(h)) throw bad('the header is not an object');
  if (h.format !== FORMAT || h.version !== 1) throw bad(`format ${String(h.format)} v${String(h.version)}`);
  if (!Array.isArray(h.adapters)) throw bad('the header lacks its list of adapters');
  let manifest: PoolManifest;
  try {
    manifest = checkManifest(h.manifest);
  } catch (e) {
    throw bad(`its manifest is invalid (${messageOf(e)})`);
  }
  const data = bytes.subarray(8 + n);
  const adapters = h.adapters.map((a: unknown, i: number) => {
    if (!isObject(a)) throw bad(`adapter entry ${i} is not an object`);
    const id = checkId(a.id, `The pool file's adapter entry ${i}`, `adapters[${i}].id`);
    if (!Number.isSafeInteger(a.offset) || !Number.isSafeInteger(a.length) || (a.offset as number) < 0 || (a.length as number) < 0) throw bad(`adapter "${id}" has invalid offsets`);
    const [offset, length] = [a.offset as number, a.length as number];
    if (offset + length > data.byteLength) throw new AppError('truncated', `The pool file ends inside adapter "${id}".`);
    return { id, config: a.config, weights: data.slice(offset, offset + length) };
  });
  return { manifest, adapters };
}
