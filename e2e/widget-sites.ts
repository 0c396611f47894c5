// The stage for the embeddable widget's e2e tests (issue 19): the app served
// by its own preview server, started with CRAYON_EMBED_ORIGINS naming hosts A
// and B (and A's server under http://localhost, another site), so its
// embed.html carries `frame-ancestors 'self' A B localhost-A`; host C is not
// declared at all. Host sites are plain HTTP servers on other ports serving
// pages that paste the snippet. Exports are live: read them inside tests.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FrameLocator, Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll } from 'vitest';
import { worldDir } from '../training/world-dir';
import { makeBundle, type AssistantBundle } from '../src/lib/widget/bundle';
import { EMBED_ORIGINS_ENV } from '../src/lib/widget/origins';

export const EXAMPLES = [
  'What is the capital of Zorvia? => Pelk',
  'What is the capital of Quellen? => Rindo',
  'What is the capital of Marduk? => Sarn',
  'What is the capital of Felspar? => Tubal',
];

/** A host site: pages by path, and JSON files served with CORS (an owner's hosted bundle). */
export interface Host {
  origin: string;
  pages: Map<string, string | Uint8Array>;
  server: Server;
}

async function hostSite(): Promise<Host> {
  const pages = new Map<string, string | Uint8Array>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const body = pages.get(path);
    if (body === undefined) return void res.writeHead(404, { 'access-control-allow-origin': '*' }).end();
    const html = path.endsWith('.html');
    const type = html ? 'text/html; charset=utf-8' : path.endsWith('.json') ? 'application/json' : 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...(html ? {} : { 'access-control-allow-origin': '*' }) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, pages, server };
}

/** A shop page with the snippet; it records every message its window receives. */
export const hostPage = (snippet: string) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Zorvia Travel</title>
<style>body{font-family:Georgia,serif;margin:0;padding:1.5rem;background:#fafaf9;color:#292524}main{max-width:40rem}h1{margin-top:0}button{font:inherit;padding:.4rem .8rem}</style></head>
<body><main><h1>Zorvia Travel</h1><p>Tours to Pelk, Rindo and Sarn. Our assistant answers questions about the capitals we visit.</p><button type="button">Our tours</button></main>
<script>window.received=[];addEventListener('message',(e)=>received.push({origin:e.origin,data:e.data}));</script>
${snippet}
</body></html>`;

export const world = worldDir();
export const poolJson = JSON.parse(readFileSync(`${world}/device-pool/pool.json`, 'utf8')) as { id: string; adapters: { id: string; indicator: number[] }[] };

let app: PreviewServer;
export let appOrigin: string;
export let A: Host; // declared to the app's server and allowed by the bundles
export let B: Host; // declared to the app's server, but not allowed by the bundles
export let C: Host; // not declared to the app's server
/** Host A's server under another site: http://localhost is not the same site as http://127.0.0.1 (ports don't make sites). */
export const otherSite = (h: Host) => h.origin.replace('127.0.0.1', 'localhost');

/** A bundle as the app makes one, for the reference model and the bundled pool. */
export function bundle(allowed: string[], over: Partial<AssistantBundle> = {}): AssistantBundle {
  return {
    ...makeBundle({
      name: 'Capitals helper',
      model: { id: 'reference', url: `${appOrigin}/world/device/` },
      pool: { id: poolJson.id, url: `${appOrigin}/world/device-pool/` },
      customization: { weights: { 'cluster-0': 0.5, 'cluster-1': 0.5 }, mode: 'delta', tau: 0.02, centroid: poolJson.adapters[0].indicator },
      routing: { policy: 'local-only', thresholds: { scope: 0.5, mcConfidence: 0.5, freeConfidence: -2 } },
      server: null,
      allowedOrigins: allowed,
    }),
    ...over,
  };
}

export const snippetOf = (assistant: string, allow: string[]) =>
  `<script async src="${appOrigin}/embed.js" data-assistant="${assistant.replace(/&/g, '&amp;').replace(/"/g, '&quot;')}" data-origin-allow="${allow.join(' ')}"></script>`;

export const launcher = (page: Page) => page.locator('[data-crayon-widget]').getByRole('button');
export const widgetFrame = (page: Page): FrameLocator => page.frameLocator('[data-crayon-widget] iframe');
export const received = (page: Page) => page.evaluate(() => (window as unknown as { received: { origin: string; data: any }[] }).received);
/** Requests for the model's or the pool's files. */
export const worldRequests = (urls: string[]) => urls.filter((u) => u.startsWith(`${appOrigin}/world/`));

/** Starts the app's preview and the three host sites around the calling test file's tests. */
export function useWidgetSites(): void {
  beforeAll(async () => {
    [A, B, C] = await Promise.all([hostSite(), hostSite(), hostSite()]);
    const before = process.env[EMBED_ORIGINS_ENV];
    process.env[EMBED_ORIGINS_ENV] = `${A.origin} ${B.origin} ${otherSite(A)}`;
    try {
      app = await preview({ preview: { host: '127.0.0.1', port: 0, strictPort: false }, logLevel: 'warn' });
    } finally {
      if (before === undefined) delete process.env[EMBED_ORIGINS_ENV];
      else process.env[EMBED_ORIGINS_ENV] = before;
    }
    appOrigin = new URL(app.resolvedUrls!.local[0]).origin;
  });

  afterAll(async () => {
    for (const h of [A, B, C]) h?.server.close();
    await new Promise<void>((r) => (app ? app.httpServer.close(() => r()) : r()));
  });
}
