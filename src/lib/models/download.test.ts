// Downloads into an in-memory Cache Storage from a fake model host: a single
// GGUF file (checked by sha256) and a safetensors folder, with progress,
// cancel, a dropped connection and a wrong checksum; none of the failures
// leaves a file behind.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AbortError, AppError } from '../errors';
import type { Progress } from '../runtimes/types';
import { deleteModel, downloadModel, listDownloaded, MODEL_CACHE, sweepIncomplete, type DownloadIo } from './download';

/** Cache Storage in memory: put() reads the body to its end, so a failing stream fails the put, as in browsers. */
class MemoryCache {
  readonly entries = new Map<string, { bytes: Uint8Array; headers: Headers }>();
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    const bytes = new Uint8Array(await res.arrayBuffer());
    this.entries.set(String(req instanceof Request ? req.url : req), { bytes, headers: new Headers(res.headers) });
  }
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e && new Response(e.bytes.slice(), { headers: e.headers });
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(req instanceof Request ? req.url : req));
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
}

function memoryCaches(): { caches: CacheStorage; cache: MemoryCache } {
  const cache = new MemoryCache();
  const caches = { open: async (name: string) => (name === MODEL_CACHE ? cache : new MemoryCache()) } as unknown as CacheStorage;
  return { caches, cache };
}

type Mode = 'whole' | 'cut' | 'chunked';

/** A model host: files by URL, each served with content-length; 'cut' drops the body halfway, 'chunked' sends 1 KiB pieces. */
function host(files: Record<string, Uint8Array>, mode: Mode = 'whole') {
  const requested: string[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const u = String(input);
    const method = init?.method ?? 'GET';
    requested.push(`${method} ${u}`);
    const body = files[u];
    if (!body) return new Response('not found', { status: 404 });
    const headers = { 'content-length': String(body.byteLength), 'content-type': 'application/octet-stream' };
    if (method === 'HEAD') return new Response(null, { headers });
    if (mode === 'whole') return new Response(body as Uint8Array<ArrayBuffer>, { headers });
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        if (init?.signal?.aborted) return ctl.error(new DOMException('aborted', 'AbortError'));
        if (mode === 'cut' && at >= body.byteLength / 2) return ctl.error(new TypeError('connection reset'));
        if (at >= body.byteLength) return ctl.close();
        ctl.enqueue(body.subarray(at, at + 1024));
        at += 1024;
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    return new Response(stream, { headers });
  }) as typeof fetch;
  return { fetch: fetchFn, requested };
}

const BASE = 'https://models.example/org/repo/resolve/abc123/';
const GGUF = 'tiny.Q4_1.gguf';
const bytes = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    return e as AppError;
  }
  throw new Error('expected the download to fail');
}

describe('downloading a GGUF model', () => {
  it('fetches only the GGUF file, with byte progress to its size, and records it as a complete model', async () => {
    const file = bytes(10_000);
    const { fetch, requested } = host({ [BASE + GGUF]: file }, 'chunked');
    const { caches, cache } = memoryCaches();
    const progress: Progress[] = [];
    const record = await downloadModel({ fetch, caches }, BASE, { gguf: GGUF, sha256: sha256(file), onProgress: (p) => progress.push(p) });

    expect(record).toMatchObject({ base: BASE, gguf: GGUF, files: [GGUF], bytes: 10_000 });
    expect(requested).toEqual([`HEAD ${BASE}${GGUF}`, `GET ${BASE}${GGUF}`]); // no config, tokenizer or index
    expect(progress.length).toBeGreaterThan(5);
    expect(progress.at(-1)).toEqual({ loaded: 10_000, total: 10_000, file: GGUF });
    expect([...cache.entries.keys()].sort()).toEqual([`${BASE}${GGUF}`, `${BASE}${GGUF}.crayon-complete`]);
    expect(cache.entries.get(BASE + GGUF)!.bytes).toEqual(file);
    expect(await listDownloaded({ caches })).toEqual([record]);
  });

  it('rejects a file whose sha256 differs from the pin with a checksum-mismatch error, and keeps nothing of it', async () => {
    const file = bytes(4096);
    const corrupt = file.slice();
    corrupt[100] ^= 1;
    const { fetch } = host({ [BASE + GGUF]: corrupt });
    const { caches, cache } = memoryCaches();
    const e = await failure(downloadModel({ fetch, caches }, BASE, { gguf: GGUF, sha256: sha256(file) }));
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe('checksum-mismatch');
    expect(e.message).toContain(GGUF);
    expect(e.details).toMatchObject({ expected: sha256(file), actual: sha256(corrupt) });
    expect(cache.entries.size).toBe(0);
    expect(await listDownloaded({ caches })).toEqual([]);
  });

  it('keeps nothing of a GGUF whose connection drops halfway', async () => {
    const { fetch } = host({ [BASE + GGUF]: bytes(8192) }, 'cut');
    const { caches, cache } = memoryCaches();
    const e = await failure(downloadModel({ fetch, caches }, BASE, { gguf: GGUF }));
    expect(e.code).toBe('network');
    expect(cache.entries.size).toBe(0);
  });

  it('keeps nothing of a GGUF download cancelled midway, and says it was cancelled', async () => {
    const { fetch } = host({ [BASE + GGUF]: bytes(64 * 1024) }, 'chunked');
    const { caches, cache } = memoryCaches();
    const ac = new AbortController();
    const e = await failure(downloadModel({ fetch, caches }, BASE, { gguf: GGUF, signal: ac.signal, onProgress: (p) => p.loaded > 8192 && ac.abort() }));
    expect(e).toBeInstanceOf(AbortError);
    expect(cache.entries.size).toBe(0);
  });

  it('names a missing GGUF file in a missing-file error', async () => {
    const { fetch } = host({});
    const { caches, cache } = memoryCaches();
    const e = await failure(downloadModel({ fetch, caches }, BASE, { gguf: GGUF }));
    expect(e.code).toBe('missing-file');
    expect(e.message).toContain(GGUF);
    expect(cache.entries.size).toBe(0);
  });

  it('treats two GGUF files of one folder as two models: deleting one keeps the other, the sweep keeps both', async () => {
    const [a, b] = [bytes(2048, 1), bytes(3072, 2)];
    const { fetch } = host({ [`${BASE}a.gguf`]: a, [`${BASE}b.gguf`]: b });
    const { caches, cache } = memoryCaches();
    await downloadModel({ fetch, caches }, BASE, { gguf: 'a.gguf', sha256: sha256(a) });
    await downloadModel({ fetch, caches }, BASE, { gguf: 'b.gguf', sha256: sha256(b) });
    await cache.put(`${BASE}c.gguf`, new Response(bytes(10))); // a download that never finished
    expect(await sweepIncomplete({ caches })).toBe(1);
    expect((await listDownloaded({ caches })).map((d) => d.gguf).sort()).toEqual(['a.gguf', 'b.gguf']);

    await deleteModel({ caches }, BASE, 'a.gguf');
    expect([...cache.entries.keys()].sort()).toEqual([`${BASE}b.gguf`, `${BASE}b.gguf.crayon-complete`]);
  });
});

describe('downloading a safetensors folder', () => {
  const folder = {
    [`${BASE}config.json`]: new TextEncoder().encode('{}'),
    [`${BASE}tokenizer.json`]: new TextEncoder().encode('{}'),
    [`${BASE}tokenizer_config.json`]: new TextEncoder().encode('{}'),
    [`${BASE}generation_config.json`]: new TextEncoder().encode('{}'),
    [`${BASE}model.safetensors`]: bytes(5000),
  };

  it('still fetches config, tokenizer, weights and the optional generation config', async () => {
    const { fetch } = host(folder);
    const { caches, cache } = memoryCaches();
    const record = await downloadModel({ fetch, caches }, BASE);
    expect(record.gguf).toBeUndefined();
    expect(record.files.sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(cache.entries.has(`${BASE}.crayon-complete`)).toBe(true);
    await deleteModel({ caches }, BASE);
    expect(cache.entries.size).toBe(0);
  });

  it('keeps nothing when the weights are cut short', async () => {
    const { fetch } = host(folder, 'cut');
    const { caches, cache } = memoryCaches();
    await failure(downloadModel({ fetch, caches } as DownloadIo, BASE));
    expect(cache.entries.size).toBe(0);
  });
});
