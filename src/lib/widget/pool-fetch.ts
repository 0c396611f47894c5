// An assistant's adapter pool, fetched from the URL its bundle names and kept
// in Cache Storage, so a host site downloads it once (in a third-party iframe
// that storage is partitioned by the host site). The URL is a folder laid out
// as the app's world/device-pool/ (pool.json, then per adapter
// <path>/adapter_config.json and adapter_model.safetensors), of which only the
// adapters the blend uses are fetched; or one pool file exported by the app.
// A file is stored only once it arrived whole.
import { AppError, AbortError, messageOf } from '../errors';
import type { PoolManifest, StoredAdapter } from '../pool/store';
import { parsePoolFile } from '../pool/store';
import type { Progress } from '../runtimes/types';

export const POOL_CACHE = 'crayon-widget-pools';

export const POOL_LIMITS = {
  /** pool.json, in bytes (indicators for every adapter). */
  manifest: 4 * 2 ** 20,
  /** One adapter file or a whole pool file, in bytes. */
  file: 256 * 2 ** 20,
};

export interface PoolIo {
  fetch: typeof fetch;
  caches: CacheStorage;
}

export interface FetchedPool {
  manifest: PoolManifest;
  adapters: StoredAdapter[];
  /** Every file came from this site's storage: nothing was downloaded. */
  stored: boolean;
}

interface PoolJson {
  id?: unknown;
  baseModel?: unknown;
  embedder?: unknown;
  adapters?: { id: string; path?: string; indicator?: number[] }[];
}

/** A file's response, from this site's cache or else the network (then kept once whole). */
async function fileFrom(io: PoolIo, cache: Cache, url: string, signal?: AbortSignal): Promise<{ res: Response; stored: boolean }> {
  const hit = await cache.match(url);
  if (hit) return { res: hit, stored: true };
  let res: Response;
  try {
    res = await io.fetch(url, { signal, credentials: 'omit' });
  } catch (e) {
    if (signal?.aborted) throw new AbortError();
    throw new AppError('network', `Could not reach ${url} (${messageOf(e)}).`, { url });
  }
  if (!res.ok) throw new AppError('http', `Downloading ${url} failed: HTTP ${res.status}.`, { url, status: res.status });
  return { res, stored: false };
}

/** The body's bytes, counted into `onBytes` as they arrive, refused past `limit`. */
async function bytesOf(res: Response, url: string, limit: number, onBytes: (n: number) => void): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? 0);
  if (declared > limit) throw new AppError('too-large', `${url} is ${declared} bytes; at most ${limit} are allowed.`, { url, limit });
  const parts: Uint8Array[] = [];
  let n = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > limit) throw new AppError('too-large', `${url} is over ${limit} bytes.`, { url, limit });
    parts.push(value);
    onBytes(value.byteLength);
  }
  if (declared && n !== declared) throw new AppError('truncated', `${url} arrived incomplete (${n} of ${declared} bytes).`, { url });
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.byteLength));
  return out;
}

/**
 * The pool `pool.id` at `pool.url`, with the adapters in `need` (the blend's), from this site's storage or
 * downloaded once. Typed errors: 'http', 'network', 'too-large', 'truncated', 'bad-format' (not a pool, or
 * another pool's id), 'missing-file' (the blend names an adapter the pool doesn't have).
 */
export async function fetchPool(io: PoolIo, pool: { id: string; url: string }, need: string[], opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void } = {}): Promise<FetchedPool> {
  const cache = await io.caches.open(POOL_CACHE);
  const urls: string[] = [];
  let stored = true;
  let loaded = 0;
  let total = 0;
  const read = async (url: string, limit: number): Promise<Uint8Array> => {
    const f = await fileFrom(io, cache, url, opts.signal);
    stored &&= f.stored;
    const bytes = await bytesOf(f.res, url, limit, (n) => {
      loaded += n;
      opts.onProgress?.({ loaded, total: Math.max(total, loaded), file: url });
    });
    urls.push(url);
    if (!f.stored) await cache.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': f.res.headers.get('content-type') ?? 'application/octet-stream' } }));
    return bytes;
  };
  const missing = (ids: string[]) => {
    const lacking = need.filter((id) => !ids.includes(id));
    if (lacking.length) throw new AppError('missing-file', `The assistant blends ${lacking.map((a) => `"${a}"`).join(', ')}, which pool "${pool.id}" doesn't have.`, { adapters: lacking });
  };
  try {
    if (!pool.url.endsWith('/')) {
      const { manifest, adapters } = parsePoolFile(await read(pool.url, POOL_LIMITS.file));
      if (manifest.id !== pool.id) throw new AppError('bad-format', `${pool.url} holds pool "${manifest.id}", not "${pool.id}".`);
      missing(adapters.map((a) => a.id));
      return { manifest: { ...manifest, adapters: manifest.adapters.filter((a) => need.includes(a.id)) }, adapters: adapters.filter((a) => need.includes(a.id)), stored };
    }
    let json: PoolJson;
    try {
      json = JSON.parse(new TextDecoder().decode(await read(new URL('pool.json', pool.url).toString(), POOL_LIMITS.manifest)));
    } catch (e) {
      throw e instanceof AppError ? e : new AppError('bad-format', `${pool.url}pool.json is not JSON.`);
    }
    if (json.id !== pool.id || !Array.isArray(json.adapters)) throw new AppError('bad-format', `${pool.url}pool.json is not pool "${pool.id}".`);
    missing(json.adapters.map((a) => a.id));
    const entries = json.adapters.filter((a) => need.includes(a.id));
    const files = entries.map((a) => new URL(`${a.path ?? a.id}/`, pool.url));
    // Sizes first, when the server gives them, so progress has a total.
    const size = async (dir: URL) => {
      const url = new URL('adapter_model.safetensors', dir).toString();
      if (await cache.match(url)) return 0; // stored: nothing to download
      return io.fetch(url, { method: 'HEAD', signal: opts.signal, credentials: 'omit' }).then((r) => Number(r.headers.get('content-length') ?? 0), () => 0);
    };
    const sizes = await Promise.all(files.map(size));
    total = loaded + sizes.reduce((a, b) => a + b, 0);
    const adapters: StoredAdapter[] = [];
    for (const [i, a] of entries.entries()) {
      let config: unknown;
      try {
        config = JSON.parse(new TextDecoder().decode(await read(new URL('adapter_config.json', files[i]).toString(), POOL_LIMITS.manifest)));
      } catch (e) {
        throw e instanceof AppError ? e : new AppError('bad-format', `Adapter "${a.id}" has an adapter_config.json that is not JSON.`);
      }
      adapters.push({ id: a.id, config, weights: await read(new URL('adapter_model.safetensors', files[i]).toString(), POOL_LIMITS.file) });
    }
    const manifest: PoolManifest = { id: pool.id, baseModel: String(json.baseModel ?? ''), embedder: json.embedder, adapters: entries.map((a) => ({ id: a.id, indicator: a.indicator ?? [] })) };
    return { manifest, adapters, stored };
  } catch (e) {
    if (opts.signal?.aborted) throw new AbortError();
    throw e;
  }
}

/** Forgets a pool's stored files (e.g. after the engine refused them), so the next visit downloads them again. */
export async function forgetPool(io: Pick<PoolIo, 'caches'>, url: string): Promise<void> {
  const cache = await io.caches.open(POOL_CACHE);
  for (const req of await cache.keys()) if (req.url.startsWith(url)) await cache.delete(req);
}
