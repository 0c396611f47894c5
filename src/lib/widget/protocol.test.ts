import { describe, expect, it } from 'vitest';
import { envelope, MESSAGE_LIMITS, readHostMessage, readWidgetMessage, WidgetGate, type HostMessage, type WidgetMessage } from './protocol';
import { thrown } from '../testing/thrown';

const host = (body: Record<string, unknown>) => ({ protocol: 'crayon-widget', version: 1, ...body });

describe('readHostMessage', () => {
  it('reads each host message of version 1', () => {
    expect(readHostMessage(host({ type: 'ask', id: 'q1', question: 'What is the capital of Zorvia?' }))).toEqual(host({ type: 'ask', id: 'q1', question: 'What is the capital of Zorvia?' }));
    expect(readHostMessage(host({ type: 'open' }))).toEqual(host({ type: 'open' }));
    expect(readHostMessage(host({ type: 'close' }))).toEqual(host({ type: 'close' }));
    expect(readHostMessage(host({ type: 'setTheme', theme: 'dark' }))).toEqual(host({ type: 'setTheme', theme: 'dark' }));
  });

  it('drops fields the message type does not have', () => {
    expect(readHostMessage(host({ type: 'open', script: '<img onerror>' }))).toEqual(host({ type: 'open' }));
  });

  it('ignores other protocols, other versions and unknown types (null, no error)', () => {
    for (const d of [null, 'ask', 42, { type: 'ask', id: 'a', question: 'q' }, host({ type: 'ask', id: 'a', question: 'q', version: 2 }), { ...host({ type: 'open' }), protocol: 'other' }, host({ type: 'reload' }), host({})]) {
      expect(readHostMessage(d), JSON.stringify(d)).toBeNull();
    }
  });

  it('refuses a question over the limit as too-large, keeping the ask id for the reply', () => {
    const e = thrown(() => readHostMessage(host({ type: 'ask', id: 'big', question: 'x'.repeat(MESSAGE_LIMITS.question + 1) })));
    expect(e.code).toBe('too-large');
    expect(e.details?.id).toBe('big');
  });

  it('refuses a message over the byte limit as too-large, and one that JSON cannot hold', () => {
    expect(thrown(() => readHostMessage(host({ type: 'open', padding: 'x'.repeat(MESSAGE_LIMITS.bytes) }))).code).toBe('too-large');
    const cyclic: Record<string, unknown> = host({ type: 'open' });
    cyclic.self = cyclic;
    expect(thrown(() => readHostMessage(cyclic)).code).toBe('too-large');
  });

  it('refuses a known message with a missing or wrong field as invalid-argument', () => {
    expect(thrown(() => readHostMessage(host({ type: 'ask', question: 'q' }))).message).toMatch(/needs an id/);
    expect(thrown(() => readHostMessage(host({ type: 'ask', id: 'a', question: '  ' }))).details).toEqual({ id: 'a' });
    expect(thrown(() => readHostMessage(host({ type: 'setTheme', theme: 'neon' }))).code).toBe('invalid-argument');
  });
});

describe('readWidgetMessage', () => {
  it('reads the widget messages and ignores anything else', () => {
    const ready = envelope<WidgetMessage>({ type: 'ready', assistant: 'A' });
    expect(readWidgetMessage(ready)).toEqual(ready);
    expect(readWidgetMessage(envelope<WidgetMessage>({ type: 'answer', id: 'a', done: true, text: 't', route: { where: 'device', reason: 'r' } }))?.type).toBe('answer');
    expect(readWidgetMessage(host({ type: 'ask', id: 'a', question: 'q' }))).toBeNull();
    expect(readWidgetMessage({ ...ready, version: 2 })).toBeNull();
  });
});

describe('WidgetGate', () => {
  const parent = { name: 'the parent window' };
  const other = { name: 'another window' };
  const open = envelope<HostMessage>({ type: 'open' });

  it('takes a message from the parent at an allowed origin, and says which origin to answer', () => {
    const gate = new WidgetGate(['https://shop.example'], parent);
    expect(gate.check({ origin: 'https://shop.example', source: parent, data: open })).toEqual({ kind: 'message', message: open, origin: 'https://shop.example' });
    expect(gate.rejected).toBe(0);
  });

  it('rejects and counts a message from an origin that is not allowed, compared exactly', () => {
    const gate = new WidgetGate(['https://shop.example'], parent);
    for (const origin of ['https://evil.example', 'https://shop.example.evil.example', 'https://SHOP.example', 'http://shop.example', 'https://shop.example:444', 'null', '*']) {
      expect(gate.check({ origin, source: parent, data: open }), origin).toEqual({ kind: 'rejected' });
    }
    expect(gate.rejected).toBe(7);
  });

  it('rejects and counts a message from another window, even at an allowed origin', () => {
    const gate = new WidgetGate(['https://shop.example'], parent);
    expect(gate.check({ origin: 'https://shop.example', source: other, data: open })).toEqual({ kind: 'rejected' });
    expect(gate.check({ origin: 'https://shop.example', source: null, data: open })).toEqual({ kind: 'rejected' });
    expect(gate.rejected).toBe(2);
  });

  it('rejects a bad message from a disallowed origin without reading it (no error reply)', () => {
    const gate = new WidgetGate(['https://shop.example'], parent);
    expect(gate.check({ origin: 'https://evil.example', source: parent, data: host({ type: 'ask', id: 'a', question: 'x'.repeat(10 ** 5) }) })).toEqual({ kind: 'rejected' });
  });

  it('turns an oversized or malformed message from the host into an error to answer, and ignores unknown ones', () => {
    const gate = new WidgetGate(['https://shop.example'], parent);
    const v = gate.check({ origin: 'https://shop.example', source: parent, data: host({ type: 'ask', id: 'q9', question: 'x'.repeat(MESSAGE_LIMITS.question + 1) }) });
    expect(v.kind).toBe('invalid');
    if (v.kind === 'invalid') {
      expect(v.error.code).toBe('too-large');
      expect(v.id).toBe('q9');
      expect(v.origin).toBe('https://shop.example');
    }
    expect(gate.check({ origin: 'https://shop.example', source: parent, data: host({ type: 'teleport' }) })).toEqual({ kind: 'ignored' });
    expect(gate.rejected).toBe(0);
  });

  it('allows no one when no origin is declared', () => {
    const gate = new WidgetGate([], parent);
    expect(gate.check({ origin: 'https://shop.example', source: parent, data: open }).kind).toBe('rejected');
  });
});
