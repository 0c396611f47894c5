import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { AppError, isAppError } from '../errors';
import { RpcClient, serve, Transfer, type Endpoint } from './rpc';

type Proto = {
  add: { params: { a: number; b: number }; result: number };
  count: { params: { to: number }; result: string; progress: number };
  wait: { params: null; result: string };
  fail: { params: { code: 'shape-mismatch' | 'boom' }; result: never };
  bytes: { params: { n: number }; result: ArrayBuffer };
};

// Node's MessagePort is an EventTarget with MessageEvent-like events: an Endpoint.
const asEndpoint = (p: MessagePort) => p as unknown as Endpoint;
const ports: MessagePort[] = [];
afterEach(() => ports.splice(0).forEach((p) => p.close()));

function connect() {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  const stop = serve<Proto>(asEndpoint(port2), {
    add: async ({ a, b }) => a + b,
    count: async ({ to }, { progress }) => {
      for (let i = 1; i <= to; i++) progress(i);
      return 'done';
    },
    wait: (_p, { signal }) =>
      new Promise((resolve, reject) => {
        signal.addEventListener('abort', () => reject(new Error('handler saw abort')));
        setTimeout(() => resolve('late'), 5_000);
      }),
    fail: async ({ code }) => {
      if (code === 'boom') throw new TypeError('undefined is not a function');
      throw new AppError('shape-mismatch', 'q_proj is [8, 64], expected [8, 128]', { tensor: 'q_proj' });
    },
    bytes: async ({ n }) => {
      const buf = new Uint8Array(n).fill(7).buffer;
      return new Transfer(buf, [buf]);
    },
  });
  return { client: new RpcClient<Proto>(asEndpoint(port1)), stop, raw: port1 };
}

describe('RPC between page and worker', () => {
  it('matches results to requests by id when calls overlap', async () => {
    const { client } = connect();
    const results = await Promise.all([client.call('add', { a: 1, b: 2 }), client.call('add', { a: 10, b: 20 }), client.call('add', { a: -1, b: 1 })]);
    expect(results).toEqual([3, 30, 0]);
  });

  it('streams progress before the result', async () => {
    const { client } = connect();
    const seen: number[] = [];
    const result = await client.call('count', { to: 4 }, { onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(result).toBe('done');
  });

  it('rebuilds typed errors with their code and details', async () => {
    const { client } = connect();
    const e = await client.call('fail', { code: 'shape-mismatch' }).catch((x: unknown) => x);
    expect(isAppError(e, 'shape-mismatch')).toBe(true);
    expect((e as AppError).details).toEqual({ tensor: 'q_proj' });
    const internal = await client.call('fail', { code: 'boom' }).catch((x: unknown) => x);
    expect(isAppError(internal, 'internal')).toBe(true);
    expect((internal as Error).message).toContain('undefined is not a function');
  });

  it('cancels a running request: the caller gets AbortError and the handler sees the signal', async () => {
    const { client } = connect();
    const ac = new AbortController();
    const p = client.call('wait', null, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(p).rejects.toMatchObject({ code: 'aborted' });
    // the server is still healthy afterwards
    expect(await client.call('add', { a: 2, b: 2 })).toBe(4);
  });

  it('answers unknown kinds and malformed messages without dying', async () => {
    const { client, raw } = connect();
    raw.postMessage('garbage');
    raw.postMessage({ type: 'request' }); // no id
    raw.postMessage({ type: 'request', id: 'x', kind: 'add' });
    const unknown = await (client as unknown as RpcClient<Record<string, { params: null; result: unknown }>>).call('nope', null).catch((x: unknown) => x);
    expect(isAppError(unknown, 'invalid-argument')).toBe(true);
    const proto = await (client as unknown as RpcClient<Record<string, { params: null; result: unknown }>>).call('toString', null).catch((x: unknown) => x);
    expect(isAppError(proto, 'invalid-argument')).toBe(true);
    expect(await client.call('add', { a: 1, b: 1 })).toBe(2);
  });

  it('moves transferred buffers instead of copying them', async () => {
    const { client } = connect();
    const buf = await client.call('bytes', { n: 16 });
    expect(new Uint8Array(buf)).toEqual(new Uint8Array(16).fill(7));
  });

  it('rejects calls in flight when the client is closed', async () => {
    const { client } = connect();
    const p = client.call('wait', null);
    client.close();
    await expect(p).rejects.toMatchObject({ code: 'internal' });
  });
});
