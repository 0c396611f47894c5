// The routing orchestration against scripted device and server sides: these
// tests pin down the decision flow (what is computed, in which order, what
// the user is told), not model quality, which bench/route measures.
import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { answer, type DeviceSide, type RouterConfig, type ServerSide } from './router';

const th = { scope: 0.5, mcConfidence: 0.6, freeConfidence: -1 };
const centroid = new Float32Array([1, 0]);
const msgs = (q: string) => [{ role: 'user' as const, content: q }];

function device(opts: { emb?: number[]; logps?: number[]; meanLogprob?: number; text?: string } = {}) {
  const calls: string[] = [];
  const side: DeviceSide = {
    embedQuery: async () => (calls.push('embed'), new Float32Array(opts.emb ?? [1, 0])),
    scoreOptions: async () => (calls.push('score'), opts.logps ?? [0, -5]),
    generate: async (_m, o) => {
      calls.push('generate');
      o.onToken?.('dev', 'device');
      return { text: opts.text ?? 'device says', meanLogprob: opts.meanLogprob ?? -0.2 };
    },
  };
  return { side, calls };
}

function server(fail?: Error) {
  const calls: string[] = [];
  /** Per call: whether it asked for the customization's blend. */
  const customized: boolean[] = [];
  const side: ServerSide = {
    chooseOption: async (_m, _o, opts) => {
      calls.push('choose');
      customized.push(opts?.customized !== false);
      if (fail) throw fail;
      return 1;
    },
    generate: async (_m, opts) => {
      calls.push('generate');
      customized.push(opts.customized !== false);
      if (fail) throw fail;
      return { text: 'server says' };
    },
  };
  return { side, calls, customized };
}

const cfg = (policy: RouterConfig['policy'], withCustomization = true): RouterConfig => ({ policy, thresholds: th, customization: withCustomization ? { centroid } : null });

describe('answer()', () => {
  it('local-only never touches the server', async () => {
    const d = device();
    const s = server();
    const a = await answer({ messages: msgs('q'), options: ['a', 'b'] }, cfg('local-only'), d.side, s.side);
    expect(a).toMatchObject({ text: 'a', choice: 0, decision: { route: 'device', reason: 'policy-local-only' } });
    expect(s.calls).toEqual([]);
  });

  it('auto sends an out-of-scope query to the server without computing a device draft', async () => {
    const d = device({ emb: [0, 1] });
    const s = server();
    const a = await answer({ messages: msgs('q'), options: ['a', 'b'] }, cfg('auto'), d.side, s.side);
    expect(a).toMatchObject({ text: 'b', choice: 1, decision: { route: 'server', reason: 'out-of-scope', scores: { scope: 0 } } });
    expect(d.calls).toEqual(['embed']);
    expect(s.customized).toEqual([false]); // the server's general model: not the customized task
  });

  it('auto keeps a confident in-scope multiple-choice answer on the device, with its top probability', async () => {
    const d = device({ logps: [-0.01, -6] });
    const a = await answer({ messages: msgs('q'), options: ['a', 'b'] }, cfg('auto'), d.side, server().side);
    expect(a.decision).toMatchObject({ route: 'device', reason: 'in-scope-confident' });
    expect(a.decision.scores.confidence).toBeCloseTo(1 / (1 + Math.exp(-5.99)), 6);
  });

  it('auto escalates a low-confidence free-form draft and keeps the draft for display', async () => {
    const d = device({ meanLogprob: -3, text: 'unsure draft' });
    const s = server();
    const tokens: string[] = [];
    const a = await answer({ messages: msgs('q') }, cfg('auto'), d.side, s.side, { onToken: (t, r) => tokens.push(`${r}:${t}`) });
    expect(a).toMatchObject({ text: 'server says', deviceDraft: 'unsure draft', decision: { route: 'server', reason: 'low-confidence' } });
    expect(tokens).toEqual(['device:dev']);
    expect(s.customized).toEqual([true]); // the customized task: the server's blend
  });

  it('falls back to the device with a notice when the server fails', async () => {
    const d = device({ emb: [0, 1], text: 'fallback' });
    const s = server(new AppError('network', 'Could not reach http://127.0.0.1:8787'));
    const a = await answer({ messages: msgs('q') }, cfg('auto'), d.side, s.side);
    expect(a.text).toBe('fallback');
    expect(a.decision.route).toBe('server');
    expect(a.notice).toMatch(/Could not reach/);
  });

  it('answers on the device with a notice when no server is configured', async () => {
    const a = await answer({ messages: msgs('q') }, cfg('server-only'), device().side, null);
    expect(a).toMatchObject({ text: 'device says', decision: { route: 'device', reason: 'server-unavailable' } });
    expect(a.notice).toBeTruthy();
  });

  it('passes an abort through instead of falling back', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(answer({ messages: msgs('q') }, cfg('local-only'), device().side, null, { signal: ac.signal })).rejects.toMatchObject({ code: 'aborted' });
  });
});

describe('pickOption', () => {
  it('maps a server reply to the option it names', async () => {
    const { pickOption } = await import('./sides');
    expect(pickOption(' Pelk ', ['Rindo', 'Pelk', 'Sarn'])).toBe(1);
    expect(pickOption('The capital is Sarn.', ['Rindo', 'Pelk', 'Sarn'])).toBe(2);
    expect(pickOption('no idea', ['Rindo', 'Pelk'])).toBe(0);
  });
});
