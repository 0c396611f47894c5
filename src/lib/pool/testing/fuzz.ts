// Tests and the hardening benchmark only: a structural fuzz of everything
// that brings adapters into the store (a pool file, PEFT adapters added to a
// pool, a saved assistant), run against a populated store. Each case breaks
// the structure of a valid input (a field set to null, the wrong type, an id
// with ":", a duplicate, an absurd scale, a weight of 3.4e38, a garbage
// indicator, a bad offset...), from a fixed seed. Every case must end typed
// (an AppError) or accepted; after a rejection the store must be byte for
// byte what it was; after an acceptance it must read back clean.
import type { UseStore } from 'idb-keyval';
import { AppError } from '../../errors';
import type { ModelConfig } from '../../engine/config';
import { rng } from '../../engine/sampler';
import { addAdapters, exportPool, loadPool, parsePoolFile, readCustomizations, readPools, saveCustomization, savePool, type Customization, type PoolManifest, type StoredAdapter } from '../store';
import { checkAdapter } from '../validate';

export interface FuzzInput {
  base: ModelConfig;
  manifest: PoolManifest;
  adapters: StoredAdapter[];
  customization: Customization;
  store: (data: Map<IDBValidKey, unknown>) => UseStore;
}

export interface FuzzResult {
  cases: number;
  typed: number;
  accepted: number;
  untyped: number;
  storeChanged: number;
  /** A few untyped errors or store changes, for the report. */
  failures: string[];
  /** Typed rejections by error code. */
  byCode: Record<string, number>;
}

const ODD: unknown[] = [null, undefined, 0, -1, 1e30, -1e30, 3.4e38, 'x', '', ':', 'a:b', '../x', [], [null], {}, true, 'x'.repeat(300), [[[]]], { id: null }];

type Json = unknown;

/** Every path into a JSON value (objects and arrays), for picking one to break. */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => (i < 6 || i === v.length - 1) && paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths((v as Record<string, Json>)[k], [...at, k], out);
  return out;
}

function setAt(root: Json, path: (string | number)[], value: unknown, r: () => number): Json {
  if (path.length === 0) return value;
  const parent = path.slice(0, -1).reduce<Json>((o, k) => (o as Record<string | number, Json>)[k], root) as Record<string | number, Json>;
  const k = path[path.length - 1];
  if (value === undefined) {
    if (Array.isArray(parent) && r() < 0.5) parent.splice(k as number, 1);
    else delete parent[k];
  } else if (Array.isArray(parent) && r() < 0.2) parent.splice(k as number, 0, structuredClone(parent[k as number])); // a duplicate
  else parent[k] = value;
  return root;
}

/** One structural mutation of a JSON value: a random path set to an odd value, or a targeted harm. */
function breakJson(v: Json, r: () => number, targeted: [string[], unknown][]): Json {
  const out = structuredClone(v);
  if (r() < 0.35 && targeted.length) {
    const [path, value] = targeted[Math.floor(r() * targeted.length)];
    try {
      return setAt(out, path.map((p) => (/^\d+$/.test(p) ? Number(p) : p)), value, r);
    } catch {
      return out;
    }
  }
  const ps = paths(out);
  const p = ps[Math.floor(r() * ps.length)];
  return setAt(out, p, ODD[Math.floor(r() * ODD.length)], r);
}

/** Writes `value` as f32 at a few random tensor positions of a safetensors file. */
function poisonTensor(bytes: Uint8Array, r: () => number, value: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const header = Number(dv.getBigUint64(0, true));
  const start = 8 + header;
  const count = Math.floor((out.length - start) / 4);
  for (let i = 0; i < 1 + Math.floor(r() * 3); i++) dv.setFloat32(start + 4 * Math.floor(r() * count), value, true);
  return out;
}

/** The store's content, byte for byte: keys sorted, JSON of each record, and a copy of each record's weights. */
function snapshot(data: Map<IDBValidKey, unknown>): Map<string, { json: string; bytes: Uint8Array | null }> {
  const out = new Map<string, { json: string; bytes: Uint8Array | null }>();
  for (const k of [...data.keys()].map(String).sort()) out.set(k, { json: recordJson(data.get(k)), bytes: weightsOf(data.get(k))?.slice() ?? null });
  return out;
}

const weightsOf = (v: unknown) => ((v as { weights?: unknown })?.weights instanceof Uint8Array ? (v as { weights: Uint8Array }).weights : null);
const recordJson = (v: unknown) => JSON.stringify(v, (key, x) => (key === 'weights' && x instanceof Uint8Array ? `<${x.length} bytes>` : x)) ?? 'undefined';

/** Whether the live store still holds exactly the snapshot's bytes. */
function unchanged(before: ReturnType<typeof snapshot>, data: Map<IDBValidKey, unknown>): boolean {
  if (before.size !== data.size) return false;
  for (const [k, x] of before) {
    if (!data.has(k)) return false;
    const v = data.get(k);
    if (recordJson(v) !== x.json) return false;
    const w = weightsOf(v);
    if ((w === null) !== (x.bytes === null)) return false;
    if (w && x.bytes && !sameBytes(w, x.bytes)) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function structuralFuzz(input: FuzzInput, cases = 2000, seed = 20261203): Promise<FuzzResult> {
  const r = rng(seed);
  const { base } = input;
  // The populated store every case starts from: the pool and a saved assistant.
  const data = new Map<IDBValidKey, unknown>();
  const store = input.store(data);
  await savePool(store, input.manifest, input.adapters, base);
  await saveCustomization(store, input.customization);
  const pristine = new Map(data);
  const before = snapshot(data);

  // The file imported: a pool of two of the adapters under a new id (two keep each case fast, and allow duplicates).
  const imported = { ...input.manifest, id: 'imported-pool', adapters: input.manifest.adapters.slice(0, 2) };
  const file = exportPool(imported, input.adapters.slice(0, 2));
  const headerLen = Number(new DataView(file.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(file.subarray(8, 8 + headerLen)));
  const body = file.subarray(8 + headerLen);
  const a0 = input.adapters[0];
  const harms = ([
    ['manifest.adapters.0', null], ['adapters.0', null], ['manifest.adapters.0.indicator', null], ['manifest.adapters.0.indicator', ['x']],
    ['manifest.adapters.0.indicator', [1e308, -1e308]], ['manifest.adapters.1.id', input.manifest.adapters[0].id], ['manifest.adapters.0.id', 'a:b'],
    ['manifest.adapters.0.id', 42], ['adapters.0.config.lora_alpha', 1e30], ['adapters.0.config.r', 0], ['adapters.0.offset', -8],
    ['adapters.0.length', 1e12], ['manifest.id', input.manifest.id], ['manifest.id', 'pool:x'], ['manifest', null], ['adapters', null],
    [[], null], [[], []], [[], 'x'], [[], 7],
  ] as [string | string[], unknown][]).map(([p, v]) => [typeof p === 'string' ? p.split('.') : p, v]) as [string[], unknown][];
  const result: FuzzResult = { cases, typed: 0, accepted: 0, untyped: 0, storeChanged: 0, failures: [], byCode: {} };

  for (let i = 0; i < cases; i++) {
    const kind = i % 4;
    let overwrite = false;
    const run = async () => {
      if (kind === 0 || kind === 1) {
        // A pool file: its header broken structurally (kind 0), or a tensor poisoned (kind 1).
        const h = kind === 0 ? breakJson(header, r, harms) : header;
        const enc = new TextEncoder().encode(JSON.stringify(h) ?? 'null');
        const weights = kind === 1 ? poisonTensor(body, r, [3.4e38, -3.4e38, NaN, Infinity, 1e5][Math.floor(r() * 5)]) : body;
        const f = new Uint8Array(8 + enc.length + weights.length);
        new DataView(f.buffer).setBigUint64(0, BigInt(enc.length), true);
        f.set(enc, 8);
        f.set(weights, 8 + enc.length);
        const parsed = parsePoolFile(f);
        overwrite = r() < 0.25;
        await savePool(store, parsed.manifest, parsed.adapters, base, { overwrite });
      } else if (kind === 2) {
        // A PEFT adapter added to the pool: its config, id or indicator broken.
        const item = breakJson({ adapter: { id: 'new-adapter', config: a0.config }, indicator: input.manifest.adapters[0].indicator }, r, [
          [['adapter', 'config', 'lora_alpha'], 1e30], [['adapter', 'id'], 'x:y'], [['adapter', 'id'], input.manifest.adapters[0].id], [['indicator'], null], [['indicator'], [NaN]], [['indicator'], [1, 2, 3]],
        ].map(([p, v]) => [p as string[], v])) as { adapter: StoredAdapter; indicator: number[] };
        if (item?.adapter && typeof item.adapter === 'object') (item.adapter as { weights?: Uint8Array }).weights = r() < 0.3 ? poisonTensor(a0.weights, r, 3.4e38) : a0.weights;
        await addAdapters(store, input.manifest, [item], base);
      } else {
        // A saved assistant broken structurally.
        await saveCustomization(store, breakJson({ ...input.customization, id: 'other' }, r, [[['weights', 'cluster-0'], 1e308], [['centroid'], [null]], [['id'], 'a:b']]) as Customization);
      }
    };
    try {
      await run();
      result.accepted++;
      await readBack(store, base);
    } catch (e) {
      if (e instanceof AppError) {
        result.typed++;
        result.byCode[e.code] = (result.byCode[e.code] ?? 0) + 1;
        if (!unchanged(before, data)) {
          result.storeChanged++;
          if (result.failures.length < 5) result.failures.push(`case ${i}: store changed after ${e.code}: ${e.message}`);
        }
      } else {
        result.untyped++;
        if (result.failures.length < 5) result.failures.push(`case ${i}: untyped ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    }
    // Back to the populated store for the next case.
    data.clear();
    for (const [k, v] of pristine) data.set(k, v);
  }
  return result;
}

/** What was accepted reads back clean: no damaged record, every pool and adapter within bounds. */
async function readBack(store: UseStore, base: ModelConfig): Promise<void> {
  const { pools, damaged } = await readPools(store);
  const cz = await readCustomizations(store);
  if (damaged.length || cz.damaged.length) throw new Error(`accepted, then damaged on read: ${[...damaged, ...cz.damaged].map((d) => d.reason).join('; ')}`);
  for (const p of pools) for (const a of (await loadPool(store, p.id)).adapters) checkAdapter(a, base);
}
