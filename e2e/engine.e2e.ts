// The engine in a real browser worker: loads the reference device model over
// HTTP from 127.0.0.1, applies pool adapters and blends, and matches the
// PyTorch fixtures; streams, stops and reports errors through the protocol.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { worldDir } from '../training/world-dir';
import { useBrowser } from './harness';

const world = worldDir();
const worldPath = '/' + relative(process.cwd(), world);
const fixture = JSON.parse(readFileSync(`${world}/fixtures/device.json`, 'utf8'));

describe('engine worker in Chromium', () => {
  const session = useBrowser();

  it.each(['cpu', 'webgpu'] as const)('matches PyTorch logits for base, single, delta and factor blends (%s backend)', async (backend) => {
    const page = await session().libPage();
    const worst = await page.evaluate(
      async ({ worldPath, fixture, backend }) => {
        const { WorkerRuntime } = await load('/src/lib/runtimes/worker-runtime.ts');
        const rt = new WorkerRuntime(new Worker('/workers/engine.worker.ts', { type: 'module' }));
        const progress: number[] = [];
        const info = await rt.load({ kind: 'url', base: `${location.origin}${worldPath}/device/` }, { backend, onProgress: (p: { loaded: number }) => progress.push(p.loaded) });
        const ids = [...new Set(fixture.cases.flatMap((c: { blend: { weights: object } | null }) => Object.keys(c.blend?.weights ?? {})))] as string[];
        for (const id of ids) {
          const dir = `${worldPath}/device-pool/${id}`;
          const config = await (await fetch(`${dir}/adapter_config.json`)).json();
          const weights = new Uint8Array(await (await fetch(`${dir}/adapter_model.safetensors`)).arrayBuffer());
          await rt.loadAdapter(id, { config, weights });
        }
        let worst = 0;
        for (const c of fixture.cases) {
          await rt.setBlend(c.blend);
          for (let i = 0; i < fixture.prompts.length; i++) {
            const got: Float32Array = await rt.logitsFor(fixture.prompts[i].ids);
            for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j] - c.logits[i][j]));
          }
        }
        return { worst, backend: info.backend, progressed: progress.length > 0 && progress[progress.length - 1] > 0 };
      },
      { worldPath, fixture, backend },
    );
    expect(worst.backend).toBe(backend);
    expect(worst.progressed).toBe(true);
    expect(worst.worst).toBeLessThanOrEqual(1e-3);
  });

  it.each([
    ['tiny-llama', 'f16'],
    ['tiny-qwen2', 'bf16'],
  ] as const)("runs %s on Chromium's WebGPU with its weights kept in %s, matching PyTorch's logits", async (name, format) => {
    const page = await session().libPage();
    const fx = JSON.parse(readFileSync(`${world}/fixtures/${name}/fixture.json`, 'utf8'));
    const out = await page.evaluate(
      async ({ base, fx }) => {
        const { CrayonEngine } = await load('/src/lib/engine/engine.ts');
        const { loadCheckpoint } = await load('/src/lib/engine/loader.ts');
        const { urlSource } = await load('/src/lib/engine/sources.ts');
        const adapter = await navigator.gpu.requestAdapter();
        const gpu = await adapter!.requestDevice();
        const ckpt = await loadCheckpoint(urlSource(`${location.origin}${base}/`, fetch.bind(globalThis)), { requireTokenizer: false });
        const e = await CrayonEngine.create(ckpt, { backend: 'webgpu', gpu });
        for (const id of ['a', 'b']) {
          const dir = `${base}/adapter-${id}`;
          const config = await (await fetch(`${dir}/adapter_config.json`)).json();
          await e.loadAdapter(id, { config, weights: new Uint8Array(await (await fetch(`${dir}/adapter_model.safetensors`)).arrayBuffer()) });
        }
        let worst = 0;
        for (const c of fx.cases) {
          e.setBlendSync(c.blend);
          for (let i = 0; i < fx.prompts.length; i++) {
            const got: Float32Array = await e.logitsFor(fx.prompts[i].ids);
            for (let j = 0; j < got.length; j++) worst = Math.max(worst, Math.abs(got[j] - c.logits[i][j]));
          }
        }
        return { worst, cases: fx.cases.length, info: e.info() };
      },
      { base: `${worldPath}/fixtures/${name}`, fx },
    );
    expect(out.info.backend).toBe('webgpu');
    expect(out.info.weightFormat).toBe(format);
    expect(out.cases).toBeGreaterThan(3);
    expect(out.worst).toBeLessThanOrEqual(1e-3);
  });

  it('streams a chat reply, stops on request, and reports typed errors without dying', async () => {
    const page = await session().libPage();
    const out = await page.evaluate(async (worldPath) => {
      const { WorkerRuntime } = await load('/src/lib/runtimes/worker-runtime.ts');
      const rt = new WorkerRuntime(new Worker('/workers/engine.worker.ts', { type: 'module' }));
      const missing = await rt.load({ kind: 'url', base: `${location.origin}/no/such/model/` }).catch((e: { code: string }) => e.code);
      await rt.load({ kind: 'url', base: `${location.origin}${worldPath}/device/` });
      const tokens: string[] = [];
      const r = await rt.generate({ messages: [{ role: 'user', content: 'What is the capital of Zorvia?' }], maxTokens: 12 }, { onToken: (t: string) => tokens.push(t) });
      const ac = new AbortController();
      const aborted = await rt.generate({ prompt: 'The day was', maxTokens: 200, temperature: 1, seed: 1 }, { signal: ac.signal, onToken: () => ac.abort() }).catch((e: { code: string }) => e.code);
      const overflow = await rt.generate({ prompt: 'x '.repeat(400), maxTokens: 10 }).catch((e: { code: string }) => e.code);
      const after = await rt.generate({ prompt: 'The day was', maxTokens: 3 });
      return { missing, streamed: tokens.join(''), text: r.text, aborted, overflow, afterTokens: after.tokens.length };
    }, worldPath);
    expect(out.missing).toBe('missing-file');
    expect(out.streamed).toBe(out.text);
    expect(out.aborted).toBe('aborted');
    expect(out.overflow).toBe('context-overflow');
    expect(out.afterTokens).toBeGreaterThan(0);
  });
});

describe('checkpoint sources in the browser', () => {
  const session = useBrowser();

  it('loads the same model from File objects and from Cache Storage, with progress, and rejects a truncated file', async () => {
    const page = await session().libPage();
    const out = await page.evaluate(async (worldPath) => {
      const { loadCheckpoint } = await load('/src/lib/engine/loader.ts');
      const { filesSource, cacheSource, urlSource } = await load('/src/lib/engine/sources.ts');
      const names = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'];
      const base = `${location.origin}${worldPath}/device/`;
      const blobs = await Promise.all(names.map(async (n) => new File([await (await fetch(base + n)).blob()], n)));
      const seen: number[] = [];
      const fromFiles = await loadCheckpoint(filesSource(blobs), { onProgress: (p: { loaded: number }) => seen.push(p.loaded) });
      const cache = await caches.open('crayon-test-models');
      for (const n of names) await cache.put(`https://models.invalid/m/${n}`, await fetch(base + n));
      const fromCache = await loadCheckpoint(cacheSource(cache, 'https://models.invalid/m/'));
      const full = blobs[3];
      const cut = new File([full.slice(0, full.size - 100)], 'model.safetensors');
      const truncated = await loadCheckpoint(filesSource([...blobs.slice(0, 3), cut])).catch((e: { code: string }) => e.code);
      const missing = await loadCheckpoint(filesSource(blobs.slice(0, 3))).catch((e: { code: string }) => e.code);
      const viaUrl = await loadCheckpoint(urlSource(base, fetch));
      const sizeOf = (c: { tensors: Map<string, { bytes: number }> }) => [...c.tensors.values()].reduce((n, t) => n + t.bytes, 0);
      return { same: sizeOf(fromFiles) === sizeOf(fromCache) && sizeOf(fromCache) === sizeOf(viaUrl), layers: fromCache.config.nLayers, progressed: seen.length > 0, truncated, missing };
    }, worldPath);
    expect(out.same).toBe(true);
    expect(out.layers).toBeGreaterThan(0);
    expect(out.progressed).toBe(true);
    expect(out.truncated).toBe('truncated');
    expect(out.missing).toBe('missing-file');
  });
});
