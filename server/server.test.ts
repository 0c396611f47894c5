// The reference server over real HTTP on 127.0.0.1, with the world's server
// model and adapters in llama.cpp.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { worldDir } from '../training/world-dir';
import { createCrayonServer, DEFAULT_CONFIG } from './app';
import { loadPool, ServerModel } from './llama';

const world = worldDir();
let model: ServerModel;
let open: Server;
let locked: Server;
let base: string;
let lockedBase: string;

const listen = (s: Server) => new Promise<string>((r) => s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));

beforeAll(async () => {
  model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 2, contextSize: 256 });
  open = createCrayonServer(model, { ...DEFAULT_CONFIG, rateLimit: { capacity: 10_000, refillPerSec: 1000 } });
  locked = createCrayonServer(model, { ...DEFAULT_CONFIG, tokens: ['secret-key'], rateLimit: { capacity: 3, refillPerSec: 0.001 } });
  base = await listen(open);
  lockedBase = await listen(locked);
});
afterAll(async () => {
  open?.close();
  locked?.close();
  await model?.dispose();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}, b = base) =>
  fetch(`${b}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const ask = { model: 'crayon-server', messages: [{ role: 'user', content: 'What is the capital of Zorvia?' }], max_tokens: 8 };

describe('reference server: OpenAI API', () => {
  it('lists its model', async () => {
    const r = await (await fetch(`${base}/v1/models`)).json();
    expect(r.data.map((m: { id: string }) => m.id)).toContain('crayon-server');
  });

  it('answers a chat completion with text and per-token logprobs', async () => {
    const r = await (await post('/v1/chat/completions', { ...ask, logprobs: true })).json();
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0].finish_reason).toBe(r.usage.completion_tokens < 8 ? 'stop' : 'length');
    expect(r.choices[0].message.role).toBe('assistant');
    expect(r.choices[0].logprobs.content.length).toBeGreaterThan(0);
    for (const t of r.choices[0].logprobs.content) expect(t.logprob).toBeLessThanOrEqual(0);
  });

  it('streams the same answer as server-sent events ending in [DONE]', async () => {
    const whole = (await (await post('/v1/chat/completions', ask)).json()).choices[0].message.content;
    const text = await (await post('/v1/chat/completions', { ...ask, stream: true })).text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    const streamed = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content ?? '').join('');
    expect(streamed).toBe(whole);
  });

  it('blends its own adapters by the weights of a customization, and takes nothing but weights', async () => {
    const pools = await (await fetch(`${base}/v1/pools`)).json();
    const pool = pools.data[0];
    const examples = await post('/v1/customizations', { pool: pool.id, weights: { [pool.adapters[0]]: 1 }, examples: ['secret'] });
    expect(examples.status).toBe(400);
    const cz = await (await post('/v1/customizations', { pool: pool.id, weights: { [pool.adapters[0]]: 1.5, [pool.adapters[1]]: 0.5 } })).json();
    expect(cz.id).toMatch(/^cz-/);
    const plain = (await (await post('/v1/chat/completions', { ...ask, logprobs: true })).json()).choices[0].logprobs.content;
    const blended = (await (await post('/v1/chat/completions', { ...ask, logprobs: true, customization: cz.id })).json()).choices[0].logprobs.content;
    expect(JSON.stringify(blended)).not.toBe(JSON.stringify(plain));
    const byModel = await post('/v1/chat/completions', { ...ask, model: cz.model });
    expect(byModel.status).toBe(200);
  });

  it('keeps at most its configured number of blend contexts (LRU)', async () => {
    const pool = (await (await fetch(`${base}/v1/pools`)).json()).data[0];
    for (let i = 0; i < 3; i++) {
      const cz = await (await post('/v1/customizations', { pool: pool.id, weights: { [pool.adapters[i]]: 1 } })).json();
      expect((await post('/v1/chat/completions', { ...ask, max_tokens: 1, customization: cz.id })).status).toBe(200);
    }
    expect(model.contextKeys.length).toBeLessThanOrEqual(2);
  });

  it('stops generating when a streaming client disconnects', async () => {
    const before = model.aborted;
    const controller = new AbortController();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: controller.signal,
      body: JSON.stringify({ ...ask, stream: true, max_tokens: 200, temperature: 1, seed: 7 }),
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first event: generation is under way
    controller.abort();
    await expect.poll(() => model.aborted, { timeout: 5000 }).toBeGreaterThan(before);
    expect((await post('/v1/chat/completions', ask)).status).toBe(200);
  });
});

describe('reference server: hardening', () => {
  it('requires a configured API key, and rate-limits per key', async () => {
    expect((await fetch(`${lockedBase}/v1/models`)).status).toBe(401);
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await fetch(`${lockedBase}/v1/models`, { headers: { authorization: 'Bearer secret-key' } })).status);
    expect(codes.slice(0, 3)).toEqual([200, 200, 200]);
    expect(codes.slice(3)).toEqual([429, 429]);
  });

  it('answers CORS preflights from allowed origins and refuses others', async () => {
    const ok = await fetch(`${base}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:4173' } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:4173');
    expect((await fetch(`${base}/v1/models`, { headers: { origin: 'https://evil.example' } })).status).toBe(403);
  });

  it('answers over 100 malformed requests with a 4xx and a message, and keeps serving', async () => {
    const bodies: unknown[] = [
      '{', 'null', '[]', '"x"', '42', {}, { model: 1 }, { model: '' }, { model: 'crayon-server' }, { model: 'crayon-server', messages: [] },
      { model: 'crayon-server', messages: 'hi' }, { model: 'nope', messages: ask.messages }, { ...ask, unknown_field: 1 }, { ...ask, stream: 'yes' },
      { ...ask, logprobs: 1 }, { ...ask, n: 2 }, { ...ask, stop: 5 }, { ...ask, stop: ['a', 'b', 'c', 'd', 'e'] }, { ...ask, stop: [''] },
      { ...ask, customization: 'cz-doesnotexist00' }, { ...ask, customization: '../etc' }, { ...ask, messages: [{ role: 'robot', content: 'x' }] },
      { ...ask, messages: [{ role: 'user' }] }, { ...ask, messages: [{ role: 'user', content: 5 }] }, { ...ask, messages: [null] },
      { ...ask, messages: [{ role: 'user', content: 'x'.repeat(20_000) }] }, { ...ask, messages: Array(65).fill(ask.messages[0]) },
      { ...ask, max_tokens: 0 }, { ...ask, max_tokens: 1.5 }, { ...ask, max_tokens: 1e9 }, { ...ask, max_tokens: 'ten' }, { ...ask, max_tokens: -1 },
      { ...ask, temperature: -1 }, { ...ask, temperature: 3 }, { ...ask, temperature: 'hot' }, { ...ask, top_p: 0 }, { ...ask, top_p: 2 },
      { ...ask, seed: -5 }, { ...ask, seed: 'abc' }, { ...ask, top_logprobs: 9 }, { ...ask, messages: [{ role: 'user', content: 'hi '.repeat(300) }], max_tokens: 200 },
    ];
    const numbers = [NaN, Infinity, -Infinity, 1e308, -1e308, 5, -5, 'x', null, [], {}, true];
    const czBodies: unknown[] = [{}, { pool: 1 }, { pool: 'nope', weights: { a: 1 } }, { pool: 'reference-server-pool' }, { pool: 'reference-server-pool', weights: [] },
      { pool: 'reference-server-pool', weights: {} }, { pool: 'reference-server-pool', weights: { 'no-such-adapter': 1 } }, { pool: 'reference-server-pool', weights: { 'cluster-0': 1 }, examples: ['x'] }];
    for (const n of numbers) czBodies.push({ pool: 'reference-server-pool', weights: { 'cluster-0': n } });
    const requests: (() => Promise<Response>)[] = [
      ...bodies.map((b) => () => post('/v1/chat/completions', b)),
      ...czBodies.map((b) => () => post('/v1/customizations', typeof b === 'object' && b && 'weights' in b ? JSON.parse(JSON.stringify(b, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? `${v}` : v))) : b)),
      ...['/v1', '/v1/nope', '/', '/v1/models/x', '/../../etc/passwd', '/v1/chat/completions/'].map((p) => () => fetch(`${base}${p}`)),
      ...['PUT', 'DELETE', 'PATCH'].map((m) => () => fetch(`${base}/v1/chat/completions`, { method: m })),
      () => fetch(`${base}/v1/models`, { method: 'POST' }),
      () => post('/v1/chat/completions', 'x'.repeat(70_000)),
      () => post('/v1/chat/completions', JSON.stringify({ ...ask, pad: 'x'.repeat(70_000) })),
      () => fetch(`${base}/v1/models`, { headers: { origin: 'null' } }),
    ];
    // Every field of a valid request, broken one by one with each kind of wrong value.
    for (const field of ['model', 'messages', 'max_tokens', 'temperature', 'top_p', 'stop', 'stream', 'logprobs', 'seed']) {
      for (const v of [{}, [[]], 'x'.repeat(300), -1]) {
        if (field === 'stop' && v === -1) continue;
        requests.push(() => post('/v1/chat/completions', { ...ask, [field]: v }));
      }
    }
    expect(requests.length).toBeGreaterThanOrEqual(100);
    for (const r of requests) {
      const res = await r();
      expect(res.status, `request ${requests.indexOf(r)}: ${await res.clone().text()}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      const body = await res.json();
      expect(typeof body.error.message).toBe('string');
      expect(body.error.message.length).toBeGreaterThan(5);
    }
    expect((await post('/v1/chat/completions', ask)).status).toBe(200);
  });
});
