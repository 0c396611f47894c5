// Starts the built app (dist/) on 127.0.0.1 for the e2e run, and the reference
// Crayon server (llama.cpp, the world's server model and pool) beside it, and
// two model hosts: a copy of the reference device model, and the real model at
// a local copy of Hugging Face's URL layout; and checks up front that a browser
// exists so a missing Chromium fails at once.
import type { TestProject } from 'vitest/node';
import { createServer, preview } from 'vite';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { chromiumPath } from './chromium';
import { createCrayonServer, DEFAULT_CONFIG } from '../server/app';
import { loadPool, ServerModel } from '../server/llama';
import { worldDir } from '../training/world-dir';
import { REAL_MODEL, realModelDir } from '../src/lib/engine/testing/real-model';

declare module 'vitest' {
  export interface ProvidedContext {
    baseURL: string;
    devURL: string;
    /** The reference server's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1 */
    serverURL: string;
    /** A copy of the reference device model served as a download (see modelFileServer). */
    modelsURL: string;
    /**
     * Stands in for https://huggingface.co: serves the real model's cache folder at
     * /<repo>/resolve/<revision>/<file> (see realModelServer); '' when the real model is not there.
     */
    realModelHost: string;
    /** The real model's cache folder, or '' when it is not there. */
    realModelDir: string;
    /** Why the real model is not there (realModelDir()'s message, with the command that fetches it), or ''. */
    realModelProblem: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  chromiumPath(); // throws with the install command when absent
  if (!existsSync('dist/index.html')) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run test:e2e does this).');
  }
  const server = await preview({ preview: { host: '127.0.0.1', port: 0, strictPort: false }, logLevel: 'warn' });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  project.provide('baseURL', url);

  // Library code tested in the real browser (IndexedDB, WebGPU, workers): a
  // Vite dev server compiles any module under the repo on request, so a test
  // page can `await import('/src/lib/...')`. See libPage() in harness.ts.
  const dev = await createServer({ appType: 'mpa', server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false }, logLevel: 'warn', optimizeDeps: { noDiscovery: true, include: [] } });
  await dev.listen();
  const devURL = dev.resolvedUrls?.local[0];
  if (!devURL) throw new Error('vite dev server did not report a URL');
  project.provide('devURL', devURL);

  const world = worldDir();
  const model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 2, contextSize: 512 });
  const api = createCrayonServer(model, { ...DEFAULT_CONFIG, corsOrigins: [new URL(url).origin, new URL(devURL).origin] });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
  project.provide('serverURL', `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`);

  const files = modelFileServer(`${world}/device`);
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', () => r()));
  project.provide('modelsURL', `http://127.0.0.1:${(files.address() as AddressInfo).port}`);

  // The real model's tests fail (never skip) with this message when it is missing; the other tests run.
  let real: { dir: string; problem: string } = { dir: '', problem: '' };
  try {
    real = { dir: realModelDir(), problem: '' };
  } catch (e) {
    real = { dir: '', problem: (e as Error).message };
  }
  const hub = realModelServer(real.dir);
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', () => r()));
  project.provide('realModelHost', real.dir ? `http://127.0.0.1:${(hub.address() as AddressInfo).port}` : '');
  project.provide('realModelDir', real.dir);
  project.provide('realModelProblem', real.problem);

  return async () => {
    hub.closeAllConnections();
    await new Promise<void>((resolve) => hub.close(() => resolve()));
    files.closeAllConnections();
    await new Promise<void>((resolve) => files.close(() => resolve()));
    await new Promise<void>((resolve) => api.close(() => resolve()));
    await model.dispose();
    await dev.close();
    await new Promise<void>((resolve) => server.httpServer.close(() => resolve()));
  };
}

/**
 * The reference device model's files over HTTP, as a model host would serve
 * them (content-length, CORS), in three ways: /m/ whole; /slow/ with the
 * weights trickling in (so a test can cancel or reload mid-download); /cut/
 * with the connection dropped halfway through the weights.
 */
function modelFileServer(dir: string): Server {
  return createHttpServer((req, res) => {
    const [, mode, name] = /^\/(m|slow|cut)\/([\w.-]+)$/.exec(req.url ?? '') ?? [];
    let body: Buffer;
    try {
      if (!mode) throw new Error('no such path');
      body = readFileSync(`${dir}/${name}`);
    } catch {
      res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.byteLength, 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' });
    if (req.method === 'HEAD') return void res.end();
    const weights = name.endsWith('.safetensors');
    if (mode === 'm' || !weights) return void res.end(body);
    if (mode === 'cut') {
      res.write(body.subarray(0, body.byteLength >> 1));
      setTimeout(() => res.destroy(), 50);
      return;
    }
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      const next = Math.min(body.byteLength, at + 16 * 1024);
      res.write(body.subarray(at, next));
      at = next;
      if (at < body.byteLength) setTimeout(tick, 40);
      else res.end();
    };
    tick();
  });
}

/**
 * The real model's cache folder as Hugging Face serves a repo's files:
 * /<repo>/resolve/<revision>/<file> (the pinned repo and revision only), with
 * content-length and CORS, streamed from disk. Under /corrupt/ the same URLs
 * answer with one byte of the file flipped, the size unchanged: a file whose
 * sha256 is not the pinned one.
 */
function realModelServer(dir: string): Server {
  const prefix = `/${REAL_MODEL.hub.repo}/resolve/${REAL_MODEL.hub.revision}/`;
  return createHttpServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '').split('?')[0]);
    const corrupt = path.startsWith('/corrupt/');
    const rest = corrupt ? path.slice('/corrupt'.length) : path;
    const name = rest.startsWith(prefix) ? rest.slice(prefix.length) : '';
    let size = -1;
    try {
      if (dir && /^[\w.-]+$/.test(name)) size = statSync(`${dir}/${name}`).size;
    } catch {
      // absent: 404 below
    }
    if (size < 0) return void res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-length' });
    if (req.method === 'HEAD') return void res.end();
    if (!corrupt) return void createReadStream(`${dir}/${name}`).pipe(res);
    const body = readFileSync(`${dir}/${name}`);
    body[body.byteLength >> 1] ^= 0xff;
    res.end(body);
  });
}
