import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { worldDir } from '../../../training/world-dir';
import { parseConfig } from '../engine/config';
import { filesSource, type FileSource } from '../engine/sources';
import { isAppError } from '../errors';
import { repoBaseUrl, adapterId, readPeftAdapter, summarize } from './import';
import { addAdapters, deleteAdapter, listCustomizations, listPools, loadAdapters, loadPool } from './store';
import { memoryStore } from './testing/memory-store';

const world = worldDir();
const base = parseConfig(JSON.parse(readFileSync(`${world}/device/config.json`, 'utf8')));
const dir = `${world}/device-pool/cluster-0`;
const file = (name: string, bytes: Uint8Array | string) => ({ name, arrayBuffer: async () => (typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes).slice().buffer as ArrayBuffer });
const peftFiles = () => [file('adapter_config.json', readFileSync(`${dir}/adapter_config.json`, 'utf8')), file('adapter_model.safetensors', new Uint8Array(readFileSync(`${dir}/adapter_model.safetensors`)))];
const code = async (p: Promise<unknown>) => p.then(() => 'resolved', (e) => (isAppError(e) ? e.code : `untyped: ${e}`));

describe('adapter URLs', () => {
  it.each([
    ['org/my-lora', 'https://huggingface.co/org/my-lora/resolve/main/'],
    ['org/my-lora@v2', 'https://huggingface.co/org/my-lora/resolve/v2/'],
    ['https://huggingface.co/org/my-lora', 'https://huggingface.co/org/my-lora/resolve/main/'],
    ['https://huggingface.co/org/my-lora/tree/dev/adapters/a', 'https://huggingface.co/org/my-lora/resolve/dev/adapters/a/'],
    ['https://huggingface.co/org/my-lora/resolve/main/adapter_config.json', 'https://huggingface.co/org/my-lora/resolve/main/'],
    ['https://huggingface.co/org/my-lora/blob/main/sub/adapter_model.safetensors', 'https://huggingface.co/org/my-lora/resolve/main/sub/'],
    ['http://127.0.0.1:8000/pool/cluster-0/adapter_config.json', 'http://127.0.0.1:8000/pool/cluster-0/'],
    ['http://127.0.0.1:8000/pool/cluster-0', 'http://127.0.0.1:8000/pool/cluster-0/'],
  ])('%s -> %s', (input, want) => expect(repoBaseUrl(input)).toBe(want));

  it('rejects what is neither a repo nor an http(s) URL', () => {
    for (const bad of ['not a url', 'ftp://x/y', 'https://huggingface.co/']) {
      expect(() => repoBaseUrl(bad)).toThrow();
    }
  });
});

describe('PEFT adapter import', () => {
  it('reads a valid adapter from picked files and summarizes it', async () => {
    const a = await readPeftAdapter(filesSource(peftFiles()), 'mine', base);
    expect(summarize(a)).toMatchObject({ id: 'mine', rank: 8, alpha: 16, bytes: a.weights.byteLength });
    expect(summarize(a).targets).toContain('q_proj');
  });

  it('names what is missing or malformed with a typed error', async () => {
    const [cfg, weights] = peftFiles();
    expect(await code(readPeftAdapter(filesSource([weights]), 'x', base))).toBe('missing-file');
    expect(await code(readPeftAdapter(filesSource([cfg]), 'x', base))).toBe('missing-file');
    expect(await code(readPeftAdapter(filesSource([file('adapter_config.json', '{oops'), weights]), 'x', base))).toBe('bad-format');
    const truncated = new Uint8Array(readFileSync(`${dir}/adapter_model.safetensors`)).slice(0, 1000);
    expect(await code(readPeftAdapter(filesSource([cfg, file('adapter_model.safetensors', truncated)]), 'x', base))).toBe('truncated');
  });

  it('refuses an adapter made for another model (shape mismatch)', async () => {
    const tiny = `${world}/fixtures/tiny-llama/adapter-a`;
    const src = filesSource([file('adapter_config.json', readFileSync(`${tiny}/adapter_config.json`, 'utf8')), file('adapter_model.safetensors', new Uint8Array(readFileSync(`${tiny}/adapter_model.safetensors`)))]);
    expect(await code(readPeftAdapter(src, 'x', base))).toMatch(/shape|incompatible/);
  });

  it('stops when the download is cancelled', async () => {
    const ac = new AbortController();
    const src: FileSource = async (_name, opts) => {
      ac.abort();
      opts.signal?.throwIfAborted();
      return null;
    };
    expect(await code(readPeftAdapter(src, 'x', base, ac.signal))).not.toBe('resolved');
  });

  it('gives imported adapters unique names', () => {
    expect(adapterId('https://huggingface.co/org/my-lora/resolve/main/', [])).toBe('org-my-lora');
    expect(adapterId('my lora', ['my-lora', 'my-lora-2'])).toBe('my-lora-3');
  });
});

describe('pool edits in the store', () => {
  it('adds adapters to a pool in one step and deletes them, keeping the others', async () => {
    const data = new Map();
    const store = memoryStore(data);
    const pool = { id: 'mine', baseModel: 'device', embedder: null };
    const a = await readPeftAdapter(filesSource(peftFiles()), 'a', base);
    const b = { ...a, id: 'b' };
    await addAdapters(store, pool, [{ adapter: a, indicator: [1, 0] }, { adapter: b, indicator: [] }], base);
    expect((await loadPool(store, 'mine')).adapters.map((x) => x.id)).toEqual(['a', 'b']);
    expect(await code(addAdapters(store, pool, [{ adapter: a, indicator: [] }], base))).toBe('invalid-argument'); // duplicate
    await deleteAdapter(store, 'mine', 'a');
    const after = await loadPool(store, 'mine');
    expect(after.manifest.adapters.map((x) => x.id)).toEqual(['b']);
    expect([...data.keys()].filter((k) => String(k).startsWith('adapter:'))).toEqual(['adapter:mine:b']);
  });

  it('stores nothing when one adapter of a batch does not fit, or when the disk is full', async () => {
    const data = new Map();
    const good = await readPeftAdapter(filesSource(peftFiles()), 'good', base);
    const bad = { id: 'bad', config: good.config, weights: good.weights.slice(0, 500) };
    expect(await code(addAdapters(memoryStore(data), { id: 'p', baseModel: 'device', embedder: null }, [{ adapter: good, indicator: [] }, { adapter: bad, indicator: [] }], base))).toBe('truncated');
    expect(data.size).toBe(0);
    expect(await code(addAdapters(memoryStore(data, () => true), { id: 'p', baseModel: 'device', embedder: null }, [{ adapter: good, indicator: [] }], base))).toBe('quota-exceeded');
    expect(await listPools(memoryStore(data))).toEqual([]);
  });

  it('lists pools and assistants without reading any adapter\'s files', async () => {
    /** A Map that records which values are read. */
    class Watched extends Map<IDBValidKey, unknown> {
      read: string[] = [];
      override get(k: IDBValidKey) {
        this.read.push(String(k));
        return super.get(k);
      }
      override values() {
        this.read.push('(every value)');
        return super.values();
      }
    }
    const data = new Watched();
    const store = memoryStore(data);
    const a = await readPeftAdapter(filesSource(peftFiles()), 'a', base);
    await addAdapters(store, { id: 'mine', baseModel: 'device', embedder: null }, [{ adapter: a, indicator: [1] }, { adapter: { ...a, id: 'b' }, indicator: [] }], base);
    data.read = [];
    expect((await listPools(store)).map((p) => p.adapters.map((x) => x.id))).toEqual([['a', 'b']]);
    expect(await listCustomizations(store)).toEqual([]);
    expect(data.read).toEqual(['pool:mine']);
    expect((await loadAdapters(store, 'mine', ['b'])).map((x) => x.id)).toEqual(['b']);
    expect(data.read).toEqual(['pool:mine', 'adapter:mine:b']);
    expect(await code(loadAdapters(store, 'mine', ['gone']))).toBe('storage-error');
  });
});
