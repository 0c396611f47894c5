// The reference server under abuse, over real HTTP on 127.0.0.1 with the
// world's server model in llama.cpp: bounded contexts and queue (503 with
// Retry-After beyond them), bounded client tables, customizations scoped to
// their caller, wrong keys throttled, and no silent wrong answers (a prompt
// over the context and a timeout are explicit errors, in a stream too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { worldDir } from '../training/world-dir';
import { createCrayonServer, DEFAULT_CONFIG, type CrayonServer, type ServerConfig } from './app';
import { Buckets, hashKeys, matchKey } from './limits';
import { loadPool, ServerModel } from './llama';

const world = worldDir();
let model: ServerModel;
const servers: CrayonServer[] = [];
const free = { capacity: 1e6, refillPerSec: 1e6 };

async function serve(cfg: Partial<ServerConfig>, m = model): Promise<{ base: string; server: CrayonServer }> {
  const server = createCrayonServer(m, { ...DEFAULT_CONFIG, rateLimit: free, ...cfg });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

beforeAll(async () => {
  model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 1, contextSize: 256, maxQueue: 3 });
});
afterAll(async () => {
  for (const s of servers) s.close();
  await model?.dispose();
});

const post = (base: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const ask = { model: 'crayon-server', messages: [{ role: 'user', content: 'What is the capital of Zorvia?' }], max_tokens: 8 };
const poolOf = async (base: string, headers: Record<string, string> = {}) => (await (await fetch(`${base}/pools`, { headers })).json()).data[0] as { id: string; adapters: string[] };

describe('server memory is bounded', () => {
  it('never holds more contexts than its bound; beyond the bounded queue a request gets 503 with Retry-After, and the server recovers', async () => {
    const { base, server } = await serve({});
    const pool = await poolOf(base);
    // 30 distinct blends at once: each wants its own llama.cpp context.
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push((await (await post(base, '/customizations', { pool: pool.id, weights: { [pool.adapters[i % pool.adapters.length]]: 0.1 + i / 30 } })).json()).id);
    const replies = await Promise.all(ids.map((id) => post(base, '/chat/completions', { ...ask, max_tokens: 32, temperature: 1, seed: 1, customization: id, stream: true })));
    const statuses = replies.map((r) => r.status);
    expect(statuses.every((s) => s === 200 || s === 503), statuses.join()).toBe(true);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    for (const r of replies) {
      if (r.status === 503) {
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect((await r.json()).error.code).toBe('server_busy');
      } else expect(await r.text()).toMatch(/data: \[DONE\]\n\n$/);
    }
    expect(model.peakContexts).toBeLessThanOrEqual(2);
    expect(server.stats().queued).toBe(0);
    expect((await post(base, '/chat/completions', { ...ask, customization: ids[0] })).status).toBe(200);
  });

  it('keys the rate limit by caller, never by what a client sends: 300 invented bearer strings make one entry', async () => {
    const { base, server } = await serve({});
    for (let i = 0; i < 300; i++) expect((await fetch(`${base}/models`, { headers: { authorization: `Bearer invented-${i}` } })).status).toBe(200);
    expect(server.stats().rateLimitEntries).toBe(1);
  });

  it('a client table keeps at most its bound and forgets buckets that have refilled', () => {
    let now = 0;
    const b = new Buckets({ capacity: 5, refillPerSec: 1 }, 1000, () => now);
    for (let i = 0; i < 100_000; i++) b.take(`k${i}`);
    expect(b.size).toBe(1000);
    now += 5_000; // every bucket is full again: the same as absent
    b.take('fresh');
    expect(b.size).toBe(1);
  });
});

describe('customizations belong to their caller', () => {
  it('another key gets 404 for it, does not see it listed, and cannot push it out; each key keeps its own newest', async () => {
    const { base } = await serve({ tokens: ['key-a', 'key-b'], maxCustomizations: 3 });
    const A = { authorization: 'Bearer key-a' };
    const B = { authorization: 'Bearer key-b' };
    const pool = await poolOf(base, A);
    const make = async (h: Record<string, string>) => (await (await post(base, '/customizations', { pool: pool.id, weights: { [pool.adapters[0]]: 1 } }, h)).json()) as { id: string; model: string };
    const a1 = await make(A);
    expect(a1.id).toMatch(/^cz-[0-9a-f]{32}$/); // 128 random bits
    const b1 = await make(B);
    expect((await post(base, '/chat/completions', { ...ask, customization: a1.id }, B)).status).toBe(404);
    expect((await post(base, '/chat/completions', { ...ask, model: a1.model }, B)).status).toBe(404);
    expect((await post(base, '/chat/completions', { ...ask, customization: a1.id }, A)).status).toBe(200);
    const listed = async (h: Record<string, string>) => (await (await fetch(`${base}/models`, { headers: h })).json()).data.map((m: { id: string }) => m.id).join(' ');
    expect(await listed(B)).not.toContain(a1.id);
    expect(await listed(A)).toContain(a1.id);
    // B makes many: A's stays; B's oldest goes (least recently used first).
    for (let i = 0; i < 5; i++) await make(B);
    expect((await post(base, '/chat/completions', { ...ask, customization: a1.id }, A)).status).toBe(200);
    expect((await post(base, '/chat/completions', { ...ask, customization: b1.id }, B)).status).toBe(404);
  });

  it('throttles wrong keys per address (429 with Retry-After, even for the right key then), and compares keys whole', async () => {
    const { base, server } = await serve({ tokens: ['right-key'], authFailures: { capacity: 3, refillPerSec: 0.01 } });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await fetch(`${base}/models`, { headers: { authorization: `Bearer wrong-${i}` } })).status);
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    const blocked = await fetch(`${base}/models`, { headers: { authorization: 'Bearer right-key' } });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(1);
    expect(server.stats().authFailureEntries).toBe(1);
    expect(server.stats().rateLimitEntries).toBe(0); // a wrong key never reaches the rate-limit table
    const keys = hashKeys(['right-key', 'other']);
    expect([matchKey(keys, 'right-key'), matchKey(keys, 'other'), matchKey(keys, 'right-ke'), matchKey(keys, 'right-key '), matchKey(keys, '')]).toEqual([0, 1, -1, -1, -1]);
  });
});

/** The events of a stream: parsed JSON, or the literal [DONE]. */
const events = (text: string) => text.split('\n\n').filter(Boolean).map((e) => (e === 'data: [DONE]' ? '[DONE]' : JSON.parse(e.slice(6))));

describe('no silent wrong answers', () => {
  it('a prompt over the context is a 400 context_length_exceeded, streamed or not (never an empty 200)', async () => {
    const { base } = await serve({});
    const long = { ...ask, messages: [{ role: 'user', content: 'the capital of Zorvia '.repeat(60) }], max_tokens: 16 };
    for (const stream of [false, true]) {
      const r = await post(base, '/chat/completions', { ...long, stream });
      expect(r.status).toBe(400);
      const e = (await r.json()).error;
      expect(e.code).toBe('context_length_exceeded');
      expect(e.message).toMatch(/exceeds the context of 256 tokens/);
    }
  });

  it('a request that hits the timeout is an error: 504 request_timeout, or once a stream has begun an error event and the end, with no [DONE]', async () => {
    // A long prompt (about 200 tokens to evaluate) and a 1 ms limit: the timeout falls inside the generation.
    const { base } = await serve({ requestTimeoutMs: 1 });
    const long = { ...ask, messages: [{ role: 'user', content: 'the capital of Zorvia '.repeat(25) }], max_tokens: 16 };
    const whole = await post(base, '/chat/completions', long);
    expect(whole.status).toBe(504);
    expect((await whole.json()).error.code).toBe('request_timeout');
    const r = await post(base, '/chat/completions', { ...long, stream: true });
    expect(r.status).toBe(200); // the stream began once a sequence was held
    const ev = events(await r.text());
    expect(ev).not.toContain('[DONE]');
    expect(ev.at(-1).error.code).toBe('request_timeout');
    expect(ev.some((e) => e.choices?.[0]?.finish_reason)).toBe(false);
  });

  it('an answer cut at max_tokens says finish_reason "length"', async () => {
    const { base } = await serve({});
    const r = await (await post(base, '/chat/completions', { ...ask, max_tokens: 1 })).json();
    expect(r.usage.completion_tokens).toBe(1);
    expect(r.choices[0].finish_reason).toBe('length');
  });
});
