// The widget's storage when the browser refuses a third-party frame Cache
// Storage: the store in memory, driven by the app's own downloadModel over
// real HTTP (the reference model's files served from world/ on 127.0.0.1).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { downloadModel, listDownloaded, MODEL_CACHE } from '../models/download';
import { worldDir } from '../../../training/world-dir';
import { memoryCaches, siteStorage, storedFiles } from './site-storage';

const dir = `${worldDir()}/device`;
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const name = (req.url ?? '').replace(/^\/m\//, '');
    let body: Buffer;
    try {
      body = /^[\w.-]+$/.test(name) ? readFileSync(`${dir}/${name}`) : Buffer.alloc(0);
      if (!body.byteLength) throw new Error('absent');
    } catch {
      return void res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/m/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('siteStorage', () => {
  it("uses the browser's Cache Storage when the frame may open it", async () => {
    const caches = memoryCaches();
    const s = await siteStorage({ caches });
    expect(s.persistent).toBe(true);
    expect(s.caches).toBe(caches);
  });

  it('falls back to memory, saying why, when the browser refuses or lacks Cache Storage', async () => {
    const refused = { open: async () => Promise.reject(new DOMException('An attempt was made to break through the security policy of the user agent.', 'SecurityError')) } as unknown as CacheStorage;
    const s = await siteStorage({ caches: refused });
    expect(s.persistent).toBe(false);
    expect(s.reason).toMatch(/security policy/);
    expect(s.locks).toBeUndefined();
    expect((await siteStorage({})).persistent).toBe(false);
  });
});

describe('the store in memory', () => {
  it("holds a model downloaded by the app's downloadModel, listed as complete, and gives its files back byte for byte", async () => {
    const caches = memoryCaches();
    const seen: number[] = [];
    const rec = await downloadModel({ fetch, caches }, base, { onProgress: (p) => seen.push(p.loaded) });
    expect(rec.files).toEqual(expect.arrayContaining(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']));
    expect(seen.at(-1)).toBe(rec.bytes);
    expect((await listDownloaded({ caches })).map((d) => d.base)).toEqual([base]);
    const files = await storedFiles(caches, MODEL_CACHE, base, rec.files);
    for (const f of files) expect(Buffer.from(await f.arrayBuffer()).equals(readFileSync(`${dir}/${f.name}`)), f.name).toBe(true);
  });

  it('keeps a GGUF whose sha256 matches its pin, and nothing of one that differs', async () => {
    const caches = memoryCaches();
    const file = 'config.json'; // any file stands in for the GGUF: only its bytes and their hash matter here
    const sha = createHash('sha256').update(readFileSync(`${dir}/${file}`)).digest('hex');
    await downloadModel({ fetch, caches }, base, { gguf: file, sha256: sha });
    expect(await listDownloaded({ caches })).toHaveLength(1);

    const other = memoryCaches();
    const e = await downloadModel({ fetch, caches: other }, base, { gguf: file, sha256: '0'.repeat(64) }).catch((x) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe('checksum-mismatch');
    expect(await (await other.open(MODEL_CACHE)).keys()).toEqual([]);
  });

  it('says which file is missing, as a typed storage error', async () => {
    const e = await storedFiles(memoryCaches(), MODEL_CACHE, base, ['config.json']).catch((x) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe('storage-error');
    expect(e.message).toMatch(/config\.json/);
  });
});
