// Where the widget keeps the model and pool it downloads. In a third-party
// iframe the browser either partitions Cache Storage by the host site (Chrome's
// default, Firefox, Safari: downloaded once per host site) or blocks it (Chrome
// with third-party cookies blocked, incognito windows): then the files stay in
// memory for this visit only, and the widget says so. The memory store is the
// same small part of the Cache API that downloadModel and fetchPool use.
import { AppError, messageOf } from '../errors';

export interface SiteStorage {
  caches: CacheStorage;
  /** navigator.locks, where the browser lets this frame use it. */
  locks?: LockManager;
  /** False: the browser refused this site's storage, so nothing outlives the visit. */
  persistent: boolean;
  /** Why it is not persistent (the browser's refusal), for the record. */
  reason?: string;
}

/** The browser's Cache Storage when this frame may use it, else a store in memory. */
export async function siteStorage(browser: { caches?: CacheStorage; locks?: LockManager }, probe = 'crayon-models'): Promise<SiteStorage> {
  try {
    if (!browser.caches) throw new Error('Cache Storage is not available here');
    await browser.caches.open(probe);
    return { caches: browser.caches, locks: browser.locks, persistent: true };
  } catch (e) {
    return { caches: memoryCaches(), persistent: false, reason: messageOf(e) };
  }
}

interface Entry {
  body: ArrayBuffer;
  init: ResponseInit;
}

/** A CacheStorage in memory: open, match, put (which reads the body whole, as the Cache API does), delete, keys. */
export function memoryCaches(): CacheStorage {
  const stores = new Map<string, Map<string, Entry>>();
  const keyOf = (r: RequestInfo | URL) => (typeof r === 'string' ? new URL(r).toString() : r instanceof URL ? r.toString() : r.url);
  const open = async (name: string): Promise<Cache> => {
    let m = stores.get(name);
    if (!m) stores.set(name, (m = new Map()));
    const entries = m;
    const cache = {
      async match(r: RequestInfo | URL) {
        const e = entries.get(keyOf(r));
        return e ? new Response(e.body.slice(0), e.init) : undefined;
      },
      async put(r: RequestInfo | URL, res: Response) {
        const body = await res.arrayBuffer();
        entries.set(keyOf(r), { body, init: { status: res.status, statusText: res.statusText, headers: [...res.headers] } });
      },
      async delete(r: RequestInfo | URL) {
        return entries.delete(keyOf(r));
      },
      async keys() {
        return [...entries.keys()].map((u) => new Request(u));
      },
    };
    return cache as unknown as Cache;
  };
  return {
    open,
    has: async (name: string) => stores.has(name),
    delete: async (name: string) => stores.delete(name),
    keys: async () => [...stores.keys()],
    match: async (r: RequestInfo | URL) => {
      for (const name of stores.keys()) {
        const hit = await (await open(name)).match(r);
        if (hit) return hit;
      }
      return undefined;
    },
  } as CacheStorage;
}

/** A stored model's files as File objects, for an engine that can't open this store (the files source). */
export async function storedFiles(caches: CacheStorage, cacheName: string, base: string, files: string[]): Promise<File[]> {
  const cache = await caches.open(cacheName);
  return Promise.all(
    files.map(async (f) => {
      const res = await cache.match(new URL(f, base).toString());
      if (!res) throw new AppError('storage-error', `${f} is missing from the widget's store.`, { file: f });
      return new File([await res.arrayBuffer()], f);
    }),
  );
}
