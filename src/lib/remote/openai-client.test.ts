// The OpenAI-compatible client against real HTTP peers on 127.0.0.1: the
// reference server (with the world's server model in llama.cpp), and small
// node:http servers that fail the ways real servers fail.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { worldDir } from '../../../training/world-dir';
import { createCrayonServer, DEFAULT_CONFIG } from '../../../server/app';
import { loadPool, ServerModel } from '../../../server/llama';
import { OpenAiClient } from './openai-client';

const world = worldDir();
let model: ServerModel;
const servers: Server[] = [];
const listen = (s: Server) => new Promise<string>((r) => (servers.push(s), s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}/v1`))));

let crayon: string;
let hurried: string; // the reference server with a 1 ms limit per request
beforeAll(async () => {
  model = await ServerModel.load(`${world}/server`, [loadPool(world)], { maxContexts: 2, sequences: 2, contextSize: 256 });
  crayon = await listen(createCrayonServer(model, { ...DEFAULT_CONFIG, tokens: ['k'] }));
  hurried = await listen(createCrayonServer(model, { ...DEFAULT_CONFIG, requestTimeoutMs: 1 }));
});
afterAll(async () => {
  servers.forEach((s) => s.close());
  await model?.dispose();
});

const messages = [{ role: 'user' as const, content: 'What is the capital of Zorvia?' }];

describe('OpenAI-compatible client', () => {
  it('streams a chat completion from the reference server, token by token, with logprobs', async () => {
    const c = new OpenAiClient({ baseUrl: crayon, apiKey: 'k', fetch });
    expect(await c.models()).toContain('crayon-server');
    const pieces: string[] = [];
    const r = await c.chat({ model: 'crayon-server', messages, maxTokens: 6, logprobs: true }, { onToken: (t) => pieces.push(t) });
    expect(pieces.join('')).toBe(r.text);
    expect(r.logprobs.length).toBeGreaterThan(0);
  });

  it('uses Crayon customizations on a Crayon server and skips them on a plain one', async () => {
    const c = new OpenAiClient({ baseUrl: crayon, apiKey: 'k', fetch });
    const pool = [...model.pools.values()][0];
    const id = await c.createCustomization(pool.id, { [[...pool.adapters.keys()][0]]: 1 });
    expect(id).toMatch(/^cz-/);
    const plain = await listen(createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}')));
    expect(await new OpenAiClient({ baseUrl: plain, fetch }).createCustomization('p', { a: 1 })).toBeNull();
  });

  it('reports a wrong API key as unauthorized', async () => {
    await expect(new OpenAiClient({ baseUrl: crayon, apiKey: 'wrong', fetch }).models()).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('retries a 503 with backoff and then succeeds', async () => {
    let n = 0;
    const flaky = await listen(createServer((_req, res) => {
      n++;
      if (n < 3) res.writeHead(503, { 'retry-after': '0' }).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":[{"id":"m"}]}');
    }));
    expect(await new OpenAiClient({ baseUrl: flaky, fetch, retries: 2 }).models()).toEqual(['m']);
    expect(n).toBe(3);
  });

  it('does not retry a 500, and says what the server said', async () => {
    let n = 0;
    const broken = await listen(createServer((_req, res) => (n++, res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"message":"boom"}}'))));
    await expect(new OpenAiClient({ baseUrl: broken, fetch }).models()).rejects.toMatchObject({ code: 'http', message: expect.stringContaining('boom') });
    expect(n).toBe(1);
  });

  it('times out a server that never answers', async () => {
    const slow = await listen(createServer(() => {}));
    await expect(new OpenAiClient({ baseUrl: slow, fetch, timeoutMs: 300, retries: 0 }).models()).rejects.toMatchObject({ code: 'timeout' });
  });

  it('reports an unreachable server as a network error', async () => {
    await expect(new OpenAiClient({ baseUrl: 'http://127.0.0.1:9/v1', fetch, retries: 1 }).models()).rejects.toMatchObject({ code: 'network' });
  });

  it('stops a streamed answer when aborted', async () => {
    const c = new OpenAiClient({ baseUrl: crayon, apiKey: 'k', fetch });
    const ac = new AbortController();
    const p = c.chat({ model: 'crayon-server', messages, maxTokens: 64 }, { signal: ac.signal, onToken: () => ac.abort() });
    await expect(p).rejects.toMatchObject({ code: 'aborted' });
  });

  it("turns the server's refusals and cut answers into typed errors, never into an answer", async () => {
    const long = [{ role: 'user' as const, content: 'the capital of Zorvia '.repeat(60) }];
    const c = new OpenAiClient({ baseUrl: crayon, apiKey: 'k', fetch });
    await expect(c.chat({ model: 'crayon-server', messages: long, maxTokens: 16 })).rejects.toMatchObject({ code: 'context-overflow', details: { status: 400, errorCode: 'context_length_exceeded' } });
    // The server's timeout falls inside the stream: an error event after the role chunk.
    const t = new OpenAiClient({ baseUrl: hurried, fetch });
    await expect(t.chat({ model: 'crayon-server', messages: [{ role: 'user', content: 'the capital of Zorvia '.repeat(25) }], maxTokens: 16 })).rejects.toMatchObject({ code: 'timeout', details: { errorCode: 'request_timeout' } });
  });

  it('rejects a stream that ends without [DONE], keeping what arrived only as a detail', async () => {
    const cut = await listen(createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ choices: [{ delta: { content: 'Half an ans' }, finish_reason: null }] })}\n\n`);
    }));
    await expect(new OpenAiClient({ baseUrl: cut, fetch }).chat({ model: 'm', messages })).rejects.toMatchObject({ code: 'network', details: { partial: 'Half an ans' } });
  });

  it('does not wait out a long Retry-After: a busy server is a typed error at once', async () => {
    let n = 0;
    const busy = await listen(createServer((_req, res) => (n++, res.writeHead(503, { 'retry-after': '30', 'content-type': 'application/json' }).end('{"error":{"message":"busy","code":"server_busy"}}'))));
    await expect(new OpenAiClient({ baseUrl: busy, fetch, retries: 2 }).chat({ model: 'm', messages })).rejects.toMatchObject({ code: 'rate-limited', details: { status: 503, retryAfter: 30 } });
    expect(n).toBe(1);
  });
});
