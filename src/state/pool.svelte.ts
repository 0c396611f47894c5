// The adapter pools on this device (IndexedDB): the bundled reference pool is
// stored on the first visit, the user imports PEFT adapters (files or URL) and
// pool files, exports and deletes. Imported adapters get an indicator from a
// few examples of what they do, computed here by the engine, so Crayon's
// similarity can use them; without examples they are kept but not matched.
import { createStore, type UseStore } from 'idb-keyval';
import { parseConfig, type ModelConfig } from '../lib/engine/config';
import { filesSource, urlSource } from '../lib/engine/sources';
import { AppError, isAppError, messageOf } from '../lib/errors';
import { centroid } from '../lib/router/policy';
import { embedExamples } from '../lib/pool/customize';
import { parseExamples } from '../lib/pool/examples';
import { repoBaseUrl, adapterId, readPeftAdapter, summarize, type AdapterSummary } from '../lib/pool/import';
import { addAdapters, deleteAdapter, deleteDamaged, deletePool, exportPool, inspectAdapters, listPools, loadPool, parsePoolFile, readCustomizations, readPools, requestPersistence, savePool, type DamagedRecord, type PoolManifest, type StoredAdapter } from '../lib/pool/store';
import type { Runtime } from '../lib/runtimes/types';

export const BUNDLED_POOL_BASE = 'world/device-pool/';
export const BUNDLED_MODEL_CONFIG = 'world/device/config.json';

/** A pool manifest as stored, with what the bundled one adds for display. */
export type PoolEntry = Omit<PoolManifest, 'adapters'> & { adapters: { id: string; indicator: number[]; topTasks?: { task: string }[] }[] };
export interface PoolView {
  manifest: PoolEntry;
  /** An adapter whose stored record fails its check has `damaged` (why) and only its id. */
  adapters: (Partial<AdapterSummary> & { id: string; hasIndicator: boolean; damaged?: string })[];
}

export class PoolState {
  pools = $state<PoolView[]>([]);
  ready = $state(false);
  busy = $state(false);
  /** The last import's error, shown beside the form. */
  importError = $state<string | null>(null);
  notice = $state<string | null>(null);
  persisted = $state<boolean | null>(null);
  /** Stored records that failed their check on read: listed with a delete button, never thrown at the page. */
  damaged = $state<DamagedRecord[]>([]);
  private base: ModelConfig | null = null;
  /** What the Adapters page shows of each adapter, by pool and id: read from storage once (an adapter's files never change under its id). */
  private readonly summaries = new Map<string, AdapterSummary>();

  constructor(readonly store: UseStore = createStore('crayon-pool', 'kv')) {}

  private initDone: Promise<void> | null = null;

  /** Stores the bundled pool on the first visit (one transaction), then lists the pools. */
  init(): Promise<void> {
    this.initDone ??= this.prepare();
    return this.initDone;
  }

  private async prepare(): Promise<void> {
    try {
      this.base = parseConfig(await (await fetch(new URL(BUNDLED_MODEL_CONFIG, location.href))).json());
      const have = new Set((await listPools(this.store)).map((p) => p.id));
      const root = new URL(BUNDLED_POOL_BASE, location.href);
      const manifest = (await (await fetch(new URL('pool.json', root))).json()) as PoolEntry & { adapters: { path: string }[] };
      if (!have.has(manifest.id)) {
        const adapters: StoredAdapter[] = [];
        for (const a of manifest.adapters) {
          const dir = new URL(`${a.path}/`, root);
          adapters.push({ id: a.id, config: await (await fetch(new URL('adapter_config.json', dir))).json(), weights: new Uint8Array(await (await fetch(new URL('adapter_model.safetensors', dir))).arrayBuffer()) });
        }
        await savePool(this.store, manifest, adapters, this.base);
      }
      this.persisted = await requestPersistence(navigator.storage);
      await this.refresh();
    } catch (e) {
      this.notice = `The adapter pool could not be prepared: ${messageOf(e)}`;
    } finally {
      this.ready = true;
    }
  }

  async refresh(): Promise<void> {
    const { pools, damaged } = await readPools(this.store);
    const views: PoolView[] = [];
    const broken = new Map<string, string>();
    for (const m of pools) {
      const missing = m.adapters.filter((a) => !this.summaries.has(summaryKey(m.id, a.id))).map((a) => a.id);
      const read = missing.length ? await inspectAdapters(this.store, m.id, missing) : [];
      read.forEach((a, i) => {
        try {
          if (a instanceof AppError) throw a;
          this.summaries.set(summaryKey(m.id, a.id), summarize(a));
        } catch (e) {
          broken.set(summaryKey(m.id, missing[i]), messageOf(e));
        }
      });
      views.push({
        manifest: m as PoolEntry,
        adapters: m.adapters.map((a) => {
          const why = broken.get(summaryKey(m.id, a.id));
          return why ? { id: a.id, hasIndicator: false, damaged: why } : { ...this.summaries.get(summaryKey(m.id, a.id))!, hasIndicator: a.indicator.length > 0 };
        }),
      });
    }
    this.pools = views;
    this.damaged = [...damaged, ...(await readCustomizations(this.store)).damaged];
  }

  /** Deletes a damaged record (a pool manifest with its adapters). */
  async removeDamaged(key: string): Promise<void> {
    await this.run(async () => {
      await deleteDamaged(this.store, key);
      return `Deleted the damaged record ${key}.`;
    });
  }

  /** The pool Crayon blends for the device model: the first one made for it. */
  active(): PoolView | null {
    return this.pools.find((p) => p.manifest.baseModel === 'device') ?? this.pools[0] ?? null;
  }

  /** The active pool's manifest and adapter files, for the engine. */
  async activeFiles(): Promise<{ manifest: PoolEntry; adapters: StoredAdapter[] }> {
    await this.init();
    const p = this.active();
    if (!p) throw new AppError('not-found', 'There is no adapter pool on this device yet.');
    return (await loadPool(this.store, p.manifest.id)) as { manifest: PoolEntry; adapters: StoredAdapter[] };
  }

  private async indicatorFor(examplesText: string, rt: Runtime): Promise<number[]> {
    const examples = parseExamples(examplesText);
    if (examples.length === 0) return [];
    return [...centroid(await embedExamples(rt, examples))];
  }

  private async run(what: () => Promise<string>): Promise<boolean> {
    this.busy = true;
    this.importError = null;
    this.notice = null;
    try {
      this.notice = await what();
      await this.refresh();
      return true;
    } catch (e) {
      this.importError = messageOf(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** A PEFT adapter from the picked files (a folder's files or the two files), into the active pool. */
  importFiles(files: File[], examplesText: string, rt: Runtime): Promise<boolean> {
    return this.run(async () => {
      const pool = this.requirePool();
      const folder = (files[0] as File & { webkitRelativePath?: string })?.webkitRelativePath?.split('/')[0];
      const id = adapterId(folder || files.find((f) => f.name.endsWith('.safetensors'))?.name.replace(/\.safetensors$/, '') || 'adapter', pool.adapters.map((a) => a.id));
      const adapter = await readPeftAdapter(filesSource(files), id, this.base!);
      await addAdapters(this.store, pool.manifest, [{ adapter, indicator: await this.indicatorFor(examplesText, rt) }], this.base!);
      return `Imported adapter "${id}".`;
    });
  }

  /** A PEFT adapter from a URL or a Hugging Face repo, into the active pool. */
  importUrl(url: string, examplesText: string, rt: Runtime, signal?: AbortSignal): Promise<boolean> {
    return this.run(async () => {
      const pool = this.requirePool();
      const base = repoBaseUrl(url);
      const id = adapterId(url, pool.adapters.map((a) => a.id));
      const adapter = await readPeftAdapter(urlSource(base, fetch.bind(globalThis)), id, this.base!, signal);
      await addAdapters(this.store, pool.manifest, [{ adapter, indicator: await this.indicatorFor(examplesText, rt) }], this.base!);
      return `Imported adapter "${id}" from ${base}.`;
    });
  }

  /** A whole pool from a file exported by Crayon; a pool of the same id is replaced only if `confirmReplace` says so. */
  importPoolFile(file: File, confirmReplace: (poolId: string) => boolean): Promise<boolean> {
    return this.run(async () => {
      if (!this.base) throw new AppError('not-found', 'The base model is not ready yet.');
      const { manifest, adapters } = parsePoolFile(new Uint8Array(await file.arrayBuffer()));
      try {
        await savePool(this.store, manifest, adapters, this.base);
      } catch (e) {
        if (!(isAppError(e, 'invalid-argument') && e.details?.exists && confirmReplace(manifest.id))) throw e;
        await savePool(this.store, manifest, adapters, this.base, { overwrite: true });
        for (const k of [...this.summaries.keys()]) if (k.startsWith(summaryKey(manifest.id, ''))) this.summaries.delete(k);
        return `Replaced pool "${manifest.id}" (${adapters.length} adapters).`;
      }
      return `Imported pool "${manifest.id}" (${adapters.length} adapters).`;
    });
  }

  async exportFile(poolId: string): Promise<Blob> {
    const { manifest, adapters } = await loadPool(this.store, poolId);
    return new Blob([exportPool(manifest, adapters) as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
  }

  async removeAdapter(poolId: string, id: string, rt: Runtime | null): Promise<void> {
    await this.run(async () => {
      await deleteAdapter(this.store, poolId, id);
      this.summaries.delete(summaryKey(poolId, id));
      if (rt?.info().adapters.includes(id)) await rt.removeAdapter(id);
      return `Deleted adapter "${id}".`;
    });
  }

  async removePool(poolId: string): Promise<void> {
    await this.run(async () => {
      await deletePool(this.store, poolId);
      for (const k of [...this.summaries.keys()]) if (k.startsWith(summaryKey(poolId, ''))) this.summaries.delete(k);
      return `Deleted pool "${poolId}".`;
    });
  }

  private requirePool(): PoolView {
    if (!this.base) throw new AppError('not-found', 'The base model is not ready yet.');
    const p = this.active();
    if (!p) throw new AppError('not-found', 'There is no adapter pool on this device to import into.');
    return p;
  }
}

const summaryKey = (pool: string, id: string) => `${pool}\n${id}`;
