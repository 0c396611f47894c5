import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, inject, it } from 'vitest';
import { ARTIFACTS_DIR, staysLocal, useBrowser } from './harness';

describe('app shell in headless Chromium', () => {
  const session = useBrowser();

  it('loads from 127.0.0.1 and reports a WebGPU adapter under the test flags', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    await expect.poll(() => page.getByTestId('backend').getAttribute('data-backend')).toBe('webgpu');
    const adapter = await page.evaluate(async () => {
      const a = await navigator.gpu?.requestAdapter();
      return a ? { architecture: a.info.architecture, f16: a.features.has('shader-f16') } : null;
    });
    expect(adapter).not.toBeNull();
    // The flags give SwiftShader here; on other machines a real GPU is fine too.
    if (adapter!.architecture === 'swiftshader') expect(adapter!.f16).toBe(false);
    await page.screenshot({ path: `${ARTIFACTS_DIR}/shell.png`, fullPage: true });
  });

  it('has WebGPU inside a dedicated worker too', async () => {
    const { page, url } = session();
    await page.goto(url('/'));
    const inWorker = await page.evaluate(async () => {
      const src = `self.onmessage = async () => { const a = await navigator.gpu?.requestAdapter(); postMessage(!!a); };`;
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
      return new Promise<boolean>((resolve) => {
        w.onmessage = (e) => resolve(e.data as boolean);
        w.postMessage(null);
      });
    });
    expect(inWorker).toBe(true);
  });
});

describe('the guards themselves', () => {
  const session = useBrowser();

  it('block and report a request that leaves 127.0.0.1', async () => {
    const { page, url, takeViolations } = session();
    await page.goto(url('/'));
    const outcome = await page.evaluate(() =>
      fetch('https://example.com/').then(
        () => 'reached',
        () => 'blocked',
      ),
    );
    expect(outcome).toBe('blocked');
    expect(takeViolations()).toEqual(['request left 127.0.0.1: https://example.com/']);
  });

  it('report an uncaught error thrown inside a worker', async () => {
    const { page, url, takeViolations } = session();
    await page.goto(url('/'));
    await page.evaluate(() => {
      const src = `throw new Error('boom in worker');`;
      // Keep a reference: an unreferenced worker may be collected before it runs.
      (globalThis as { keep?: Worker }).keep = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
    });
    await expect.poll(() => takeViolations().join('\n'), { timeout: 10_000 }).toContain('boom in worker');
  });

  it('treat only loopback and local schemes as staying on the machine', () => {
    expect(staysLocal('http://127.0.0.1:4173/x')).toBe(true);
    expect(staysLocal('http://localhost:1/')).toBe(true);
    expect(staysLocal('data:text/plain,hi')).toBe(true);
    expect(staysLocal('https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/config.json')).toBe(false);
    expect(staysLocal('http://10.0.0.1/')).toBe(false);
  });
});

describe('library code in the browser (Vite dev server)', () => {
  const session = useBrowser();

  it('imports a TypeScript module from src/lib and runs it against real IndexedDB-backed APIs', async () => {
    const page = await session().libPage();
    const result = await page.evaluate(async () => {
      const errors = await load('/src/lib/errors.ts');
      const e = new errors.AppError('quota-exceeded', 'full');
      const back = errors.fromSerialized(JSON.parse(JSON.stringify(errors.serializeError(e))));
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const r = indexedDB.open('probe', 1);
        r.onupgradeneeded = () => r.result.createObjectStore('s');
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      db.close();
      return { code: back.code, isAppError: back instanceof errors.AppError, idb: db.name };
    });
    expect(result).toEqual({ code: 'quota-exceeded', isAppError: true, idb: 'probe' });
  });
});

describe('offline (service worker)', () => {
  const session = useBrowser();

  it('precaches the app shell and reloads it with the network gone', async () => {
    const { page, url, context } = session();
    await page.goto(url('/'));
    await page.getByTestId('offline-ready').waitFor({ state: 'attached', timeout: 30_000 });
    await context.setOffline(true);
    await page.reload();
    await expect.poll(() => page.getByRole('heading', { name: 'Crayon' }).isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Settings' }).click();
    await expect.poll(() => page.getByRole('heading', { name: 'Settings' }).isVisible()).toBe(true);
  });

  it('answers on the device after an offline reload, and the server route degrades with a notice', async () => {
    const { page, url, context } = session();
    await page.goto(url('/'));
    await page.getByTestId('offline-ready').waitFor({ state: 'attached', timeout: 30_000 });
    // The reference server is up, set as the server, and asked for every question.
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/Server only/).check();
    const server = page.getByLabel(/Server URL/);
    await server.fill(inject('serverURL'));
    await server.blur();
    await context.setOffline(true);
    await page.reload();
    await page.getByTestId('model-ready').waitFor({ timeout: 15_000 }); // the bundled model, from the precache
    await page.getByLabel('Your message').fill('What is 2 plus 3?');
    await page.getByRole('button', { name: 'Send' }).click();
    const reply = page.getByTestId('turn-assistant').last();
    await reply.getByTestId('route').waitFor({ timeout: 60_000 });
    expect(await reply.getByTestId('route').textContent()).toMatch(/Ran on the device/);
    expect(await reply.getByRole('status').textContent()).toMatch(/server could not answer/);
    expect(await page.getByTestId('turn-user').last().textContent()).toContain('What is 2 plus 3?');
    await page.screenshot({ path: `${ARTIFACTS_DIR}/offline-degraded.png`, fullPage: true });
  });

  it('keeps the initial JavaScript (all but worker, engine and model chunks) under 200 KB gzipped', async () => {
    // What index.html loads before anything else: its module script and the modules it preloads.
    const html = readFileSync('dist/index.html', 'utf8');
    const srcs = [...html.matchAll(/<script[^>]+src="([^"]+\.js)"|<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"/g)].map((m) => m[1] ?? m[2]);
    expect(srcs.length).toBeGreaterThan(0);
    const gz = srcs.reduce((n, s) => n + gzipSync(readFileSync(`dist${s}`)).byteLength, 0);
    console.log(`initial JS: ${srcs.join(', ')} = ${(gz / 1024).toFixed(1)} KB gzipped`);
    expect(gz).toBeLessThanOrEqual(200 * 1024);
  });
});
