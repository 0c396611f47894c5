// The router worker's core over real parts: the reference device model on the
// CPU engine, and the reference Crayon server (llama.cpp) over real HTTP on
// 127.0.0.1. Every request the router makes is recorded at the fetch boundary.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCrayonServer, DEFAULT_CONFIG } from '../../../server/app';
import { loadPool, ServerModel } from '../../../server/llama';
import { worldDir } from '../../../training/world-dir';
import { CrayonEngine } from '../engine/engine';
import { loadCheckpoint } from '../engine/loader';
import { fsSource, readAdapterDir } from '../engine/testing/fs-source';
import { AbortError } from '../errors';
import type { HandlerContext } from '../protocol/rpc';
import { crayonBlend } from '../pool/blend';
import { embedExamples } from '../pool/customize';
import { matchPool, outbound, routerHandlers } from './host';
import type { RouterSetup } from './protocol';
import type { Answer, ChatMessage, Query } from './router';

const world = worldDir();
let model: ServerModel;
let http: Server;
let base: string;
let device: CrayonEngine;
const examples = [
  { input: 'What is the capital of Zorvia?', output: 'Velm' },
  { input: 'SECRET-EXAMPLE what is 3 plus 4?', output: '7' },
];
let setupAuto: RouterSetup;

beforeAll(async () => {
  model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 2, contextSize: 256 });
  http = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 10_000, refillPerSec: 1000 } });
  base = await new Promise<string>((r) => http.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v1`)));
  device = await CrayonEngine.create(await loadCheckpoint(fsSource(`${world}/device`)), { backend: 'cpu' });
  const pool = JSON.parse((await import('node:fs')).readFileSync(`${world}/device-pool/pool.json`, 'utf8'));
  for (const a of pool.adapters) await device.loadAdapter(a.id, readAdapterDir(`${world}/device-pool/${a.path}`));
  const cz = crayonBlend(await embedExamples(device, examples), pool.adapters, { tau: 0.05 });
  setupAuto = { policy: 'auto', thresholds: { scope: 1.01, mcConfidence: 0.5, freeConfidence: -2 }, customization: { centroid: cz.centroid, weights: cz.weights }, server: { baseUrl: base } };
});
afterAll(async () => {
  http?.close();
  await model?.dispose();
  await device?.unload();
});

/** Handlers over a fetch that records every request (URL and body) it passes on. */
function host() {
  const seen: { url: string; body: string }[] = [];
  const recording: typeof fetch = async (input, init) => {
    seen.push({ url: String(input), body: typeof init?.body === 'string' ? init.body : '' });
    return fetch(input, init);
  };
  const handlers = routerHandlers({ device, fetch: recording });
  // answer() returns a plain Answer (never a Transfer): typed so here.
  const h = { configure: handlers.configure, serverCustomization: handlers.serverCustomization, answer: (p: { query: Query }, c: Parameters<typeof handlers.answer>[1]) => handlers.answer(p, c) as Promise<Answer> };
  return { h, seen };
}
const ctx = (signal = new AbortController().signal): HandlerContext<{ text: string; route: 'device' | 'server' }> & { tokens: string[] } => {
  const tokens: string[] = [];
  return { signal, progress: (p) => tokens.push(p.route), tokens };
};
const q = (content: string) => ({ query: { messages: [{ role: 'user' as const, content }], maxTokens: 6 } });

describe('router host', () => {
  it('under local-only answers on the device and sends nothing anywhere, even with a server set', async () => {
    const { h, seen } = host();
    await h.configure({ ...setupAuto, policy: 'local-only' }, ctx());
    const a = await h.answer(q('What is the capital of Zorvia?'), ctx());
    expect(a.decision.route).toBe('device');
    expect(a.decision.reason).toBe('policy-local-only');
    expect(seen).toEqual([]);
  });

  it('sends a low-confidence query to the server with the blend weights registered once, and never the examples', async () => {
    const { h, seen } = host();
    // Every query in scope, and every free-form draft below the confidence threshold.
    await h.configure({ ...setupAuto, thresholds: { scope: -1.01, mcConfidence: 0.5, freeConfidence: 0.01 } }, ctx());
    const c = ctx();
    const a = await h.answer(q('What is the capital of Zorvia?'), c);
    expect(a.decision).toMatchObject({ route: 'server', reason: 'low-confidence', customizedServer: true });
    expect(a.notice).toBeUndefined();
    expect(c.tokens.length).toBeGreaterThan(0);
    expect(c.tokens.at(-1)).toBe('server'); // the device's draft streams first, then the server's answer
    await h.answer(q('What is 2 plus 2?'), ctx());
    const posts = seen.filter((r) => r.url.endsWith('/customizations'));
    expect(posts).toHaveLength(1);
    const sent = JSON.parse(posts[0].body);
    expect(Object.keys(sent).sort()).toEqual(['pool', 'weights']);
    expect(sent.pool).toBe('reference-server-pool');
    for (const [id, w] of Object.entries(setupAuto.customization!.weights)) if (w) expect(sent.weights[id]).toBeCloseTo(w, 12);
    const chats = seen.filter((r) => r.url.endsWith('/chat/completions')).map((r) => JSON.parse(r.body));
    expect(chats).toHaveLength(2);
    for (const body of chats) expect(body.customization).toMatch(/^cz-/);
    for (const r of seen) for (const e of examples) expect(r.body).not.toContain(e.output === '7' ? 'SECRET-EXAMPLE' : e.output);
  });

  it("sends an out-of-scope query to the server's general model: no customization named, none registered", async () => {
    const { h, seen } = host();
    await h.configure(setupAuto, ctx()); // scope threshold above 1: every query is out of scope
    const c = ctx();
    const a = await h.answer(q('What is the capital of Zorvia?'), c);
    expect(a.decision).toMatchObject({ route: 'server', reason: 'out-of-scope', customizedServer: false });
    expect(a.notice).toBeUndefined();
    expect(new Set(c.tokens)).toEqual(new Set(['server']));
    expect(seen.filter((r) => r.url.endsWith('/customizations'))).toEqual([]);
    const chats = seen.filter((r) => r.url.endsWith('/chat/completions')).map((r) => JSON.parse(r.body));
    expect(chats).toHaveLength(1);
    expect(chats[0]).not.toHaveProperty('customization');
  });

  it('keeps a confident in-scope query on the device', async () => {
    const { h, seen } = host();
    await h.configure({ ...setupAuto, thresholds: { scope: -1, mcConfidence: 0, freeConfidence: -50 } }, ctx());
    const a = await h.answer(q('What is the capital of Zorvia?'), ctx());
    expect(a.decision).toMatchObject({ route: 'device', reason: 'in-scope-confident' });
    expect(a.decision.scores.scope).toBeGreaterThan(-1);
    expect(seen).toEqual([]);
  });

  it('answers on the device with a notice when the server is unreachable, losing nothing', async () => {
    const { h } = host();
    await h.configure({ ...setupAuto, server: { baseUrl: 'http://127.0.0.1:9/v1' } }, ctx());
    const a = await h.answer(q('What is the capital of Zorvia?'), ctx());
    expect(a.decision.route).toBe('server');
    expect(a.text.length).toBeGreaterThan(0);
    expect(a.notice).toMatch(/server could not answer/);
  });

  it('registers the weights again when the server forgot them (restart), and answers', async () => {
    const { h, seen } = host();
    await h.configure({ ...setupAuto, thresholds: { scope: -1.01, mcConfidence: 0.5, freeConfidence: 0.01 } }, ctx()); // every query low-confidence
    await h.answer(q('hello'), ctx());
    // A restarted server: a fresh app over the same model has no customizations.
    http.close();
    http = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 10_000, refillPerSec: 1000 } });
    const port = Number(new URL(base).port);
    await new Promise<void>((r) => http.listen(port, '127.0.0.1', () => r()));
    const a = await h.answer(q('hello again'), ctx());
    expect(a.notice).toBeUndefined();
    expect(seen.filter((r) => r.url.endsWith('/customizations'))).toHaveLength(2);
  });

  it('stops when aborted', async () => {
    const { h } = host();
    await h.configure({ ...setupAuto, policy: 'local-only' }, ctx());
    const ac = new AbortController();
    ac.abort();
    await expect(h.answer(q('What is 2 plus 2?'), ctx(ac.signal))).rejects.toBeInstanceOf(AbortError);
  });

  it('refuses to answer before it is configured', async () => {
    const { h } = host();
    await expect(h.answer(q('hi'), ctx())).rejects.toThrow(/not configured/);
  });
});

describe('matchPool', () => {
  it('picks the server pool that has every adapter of the blend', () => {
    const pools = [{ id: 'a', adapters: ['x'] }, { id: 'b', adapters: ['x', 'y', 'z'] }];
    expect(matchPool(pools, ['x', 'y'])).toBe('b');
    expect(matchPool(pools, ['q'])).toBeNull();
  });
});

describe('what leaves the device', () => {
  const ACCOUNT = 'account 4921-7788-0012';
  const conversation: ChatMessage[] = [
    { role: 'user', content: `My ${ACCOUNT}: what is the capital of Zorvia?`, askedUnder: 'local-only' },
    { role: 'assistant', content: `Velm (${ACCOUNT})` },
    { role: 'user', content: 'What is 2 plus 2?', askedUnder: 'auto' },
    { role: 'assistant', content: '4' },
    { role: 'user', content: 'And 3 plus 3?', askedUnder: 'server-only' },
    { role: 'assistant', content: '6' },
    { role: 'user', content: 'No policy recorded (an old conversation)' },
    { role: 'assistant', content: 'old answer' },
    { role: 'user', content: 'What is 5 plus 5?', askedUnder: 'auto' },
  ];

  it('outbound: nothing under local-only or for a question asked under it; else the question, plus allowed turns only when the user chose so', () => {
    expect(outbound({ policy: 'local-only' }, conversation)).toBeNull();
    expect(outbound({ policy: 'auto' }, [...conversation.slice(0, -1), { role: 'user', content: 'x', askedUnder: 'local-only' }])).toBeNull();
    expect(outbound({ policy: 'auto', history: 'none' }, conversation)).toEqual([{ role: 'user', content: 'What is 5 plus 5?' }]);
    expect(outbound({ policy: 'server-only', history: 'shared' }, conversation)).toEqual([
      { role: 'user', content: 'What is 2 plus 2?' }, { role: 'assistant', content: '4' },
      { role: 'user', content: 'And 3 plus 3?' }, { role: 'assistant', content: '6' },
      { role: 'user', content: 'What is 5 plus 5?' },
    ]);
  });

  it('an escalated question takes no turn asked under local-only to the server, and the answer lists exactly what was sent', async () => {
    const { h, seen } = host();
    // Every free-form draft below the confidence threshold: escalated.
    await h.configure({ ...setupAuto, history: 'shared', thresholds: { scope: -1.01, mcConfidence: 0.5, freeConfidence: 0.01 } }, ctx());
    const a = await h.answer({ query: { messages: conversation, maxTokens: 6 } }, ctx());
    expect(a.decision.route).toBe('server');
    const chats = seen.filter((r) => r.url.endsWith('/chat/completions')).map((r) => JSON.parse(r.body));
    expect(chats).toHaveLength(1);
    for (const r of seen) expect(r.body).not.toContain('4921');
    expect(chats[0].messages).toEqual(a.sent!.messages);
    expect(a.sent!.messages.map((m) => m.content)).toEqual(['What is 2 plus 2?', '4', 'And 3 plus 3?', '6', 'What is 5 plus 5?']);
    expect(a.sent!.blendWeights).toBe(true);
  });

  it('a question asked under local-only stays on the device under Server only, and local-only sends not even the weights', async () => {
    const { h, seen } = host();
    await h.configure({ ...setupAuto, policy: 'server-only' }, ctx());
    const a = await h.answer({ query: { messages: [{ role: 'user', content: `My ${ACCOUNT}?`, askedUnder: 'local-only' }], maxTokens: 4 } }, ctx());
    expect(a.decision.route).toBe('device');
    expect(a.notice).toMatch(/asked under “This device only”, so it stays on this device/);
    expect(a.sent).toBeUndefined();
    await h.configure({ ...setupAuto, policy: 'local-only' }, ctx());
    expect(await h.serverCustomization(null, ctx())).toBeNull();
    expect(seen).toEqual([]);
  });
});
