// The adapter pool on the device, in IndexedDB through idb-keyval (the
// UseStore is passed in): pool manifests with their indicators, adapters
// (PEFT config + safetensors bytes), and saved customizations. A whole pool is
// written in one transaction, so an interrupted import leaves nothing half
// written; a full disk is a typed `quota-exceeded` error and loses nothing.
import { del, delMany, get, getMany, keys, promisifyRequest, setMany, type UseStore } from 'idb-keyval';
import { AppError, messageOf } from '../errors';
import type { ModelConfig } from '../engine/config';
import { parseAdapter } from '../engine/lora';

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

/** Validates every adapter against the base model, then writes the pool in one transaction. */
export async function savePool(store: UseStore, manifest: PoolManifest, adapters: StoredAdapter[], base: ModelConfig): Promise<void> {
  const ids = new Set(adapters.map((a) => a.id));
  for (const a of manifest.adapters) if (!ids.has(a.id)) throw new AppError('missing-file', `Pool "${manifest.id}" lists adapter "${a.id}" but its files are missing.`);
  for (const a of adapters) parseAdapter(a.id, a.config, a.weights, base); // throws a typed error naming what doesn't fit
  try {
    await setMany([[poolKey(manifest.id), manifest], ...adapters.map((a) => [adapterKey(manifest.id, a.id), a] as [string, StoredAdapter])], store);
  } catch (e) {
    throw storageError(e, `pool "${manifest.id}"`);
  }
}

/** The values under keys that start with `prefix`, reading only those (not every adapter's weights). */
async function valuesWithPrefix<T>(store: UseStore, prefix: string): Promise<T[]> {
  const ks = (await keys(store)).filter((k) => String(k).startsWith(prefix));
  return (await getMany<T>(ks, store)).filter((v) => v !== undefined);
}

export async function listPools(store: UseStore): Promise<PoolManifest[]> {
  return valuesWithPrefix<PoolManifest>(store, 'pool:');
}

export async function loadPool(store: UseStore, id: string): Promise<{ manifest: PoolManifest; adapters: StoredAdapter[] }> {
  const manifest = await get<PoolManifest>(poolKey(id), store);
  if (!manifest) throw new AppError('not-found', `No pool "${id}" on this device.`);
  return { manifest, adapters: await loadAdapters(store, id, manifest.adapters.map((a) => a.id)) };
}

/** Some adapters of a pool, files included. */
export async function loadAdapters(store: UseStore, poolId: string, ids: string[]): Promise<StoredAdapter[]> {
  const adapters = await getMany<StoredAdapter>(ids.map((a) => adapterKey(poolId, a)), store);
  if (adapters.some((a) => !a)) throw new AppError('storage-error', `Pool "${poolId}" is missing some adapters in storage.`);
  return adapters as StoredAdapter[];
}

export async function deletePool(store: UseStore, id: string): Promise<void> {
  const manifest = await get<PoolManifest>(poolKey(id), store);
  if (!manifest) return;
  await delMany([poolKey(id), ...manifest.adapters.map((a) => adapterKey(id, a.id))], store);
}

/**
 * Adds adapters to a pool (created if absent) in one transaction, after every
 * one is checked against the base model. An adapter without an indicator
 * (empty) is kept and can be blended by hand, but Crayon's similarity skips it.
 */
export async function addAdapters(store: UseStore, pool: Omit<PoolManifest, 'adapters'>, items: { adapter: StoredAdapter; indicator: number[] }[], base: ModelConfig): Promise<PoolManifest> {
  for (const { adapter } of items) parseAdapter(adapter.id, adapter.config, adapter.weights, base);
  const current = (await get<PoolManifest>(poolKey(pool.id), store)) ?? { ...pool, adapters: [] };
  const taken = new Set(current.adapters.map((a) => a.id));
  for (const { adapter } of items) if (taken.has(adapter.id)) throw new AppError('invalid-argument', `Pool "${pool.id}" already has an adapter "${adapter.id}".`);
  const manifest: PoolManifest = { ...current, adapters: [...current.adapters, ...items.map((x) => ({ id: x.adapter.id, indicator: x.indicator }))] };
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
  const current = await get<PoolManifest>(poolKey(poolId), store);
  if (!current) throw new AppError('not-found', `No pool "${poolId}" on this device.`);
  const manifest = { ...current, adapters: current.adapters.filter((a) => a.id !== id) };
  await store('readwrite', (os) => {
    os.put(manifest, poolKey(poolId));
    os.delete(adapterKey(poolId, id));
    return promisifyRequest(os.transaction);
  });
  return manifest;
}

export async function saveCustomization(store: UseStore, cz: Customization): Promise<void> {
  try {
    await setMany([[czKey(cz.id), cz]], store);
  } catch (e) {
    throw storageError(e, `assistant "${cz.name}"`);
  }
}

export async function listCustomizations(store: UseStore): Promise<Customization[]> {
  return valuesWithPrefix<Customization>(store, 'cz:');
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
  if (bytes.byteLength < 8) throw new AppError('truncated', 'The pool file is too short.');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n <= 0 || 8 + n > bytes.byteLength) throw new AppError('truncated', 'The pool file ends inside its header.');
  let h: { format?: string; version?: number; manifest?: PoolManifest; adapters?: { id: string; config: unknown; offset: number; length: number }[] };
  try {
    h = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch {
    throw bad('the header is not JSON');
  }
  if (h.format !== FORMAT || h.version !== 1) throw bad(`format ${String(h.format)} v${String(h.version)}`);
  if (!h.manifest || !Array.isArray(h.manifest.adapters) || !Array.isArray(h.adapters)) throw bad('the header lacks a manifest or adapters');
  const data = bytes.subarray(8 + n);
  const adapters = h.adapters.map((a) => {
    if (!Number.isSafeInteger(a.offset) || !Number.isSafeInteger(a.length) || a.offset < 0 || a.length < 0) throw bad(`adapter "${a.id}" has invalid offsets`);
    if (a.offset + a.length > data.byteLength) throw new AppError('truncated', `The pool file ends inside adapter "${a.id}".`);
    return { id: a.id, config: a.config, weights: data.slice(a.offset, a.offset + a.length) };
  });
  return { manifest: h.manifest, adapters };
}
