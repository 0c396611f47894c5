// The router's two sides made of real parts: the on-device Runtime, and an
// OpenAI-compatible server through the remote client.
import type { OpenAiClient } from '../remote/openai-client';
import type { Runtime } from '../runtimes/types';
import type { ChatMessage, DeviceSide, ServerCallOptions, ServerSide } from './router';

export function deviceSide(rt: Runtime): DeviceSide {
  return {
    embedQuery: async (messages) => (await rt.embed([await rt.renderChat(messages, true)]))[0],
    scoreOptions: async (messages, options, signal) => (await rt.score({ messages }, options, { signal })).sum,
    generate: async (messages, o) => {
      const r = await rt.generate({ messages, maxTokens: o.maxTokens ?? 128 }, { signal: o.signal, onToken: (t) => o.onToken?.(t, 'device') });
      // An empty reply (the model ended at once) is no evidence of knowing the answer: least confident.
      const mean = r.logprobs.length ? r.logprobs.reduce((a, b) => a + b, 0) / r.logprobs.length : -Infinity;
      return { text: r.text, meanLogprob: mean };
    },
  };
}

/** The option a free-text reply names: an exact match, else the first option the reply contains, else the first. */
export function pickOption(reply: string, options: string[]): number {
  const norm = (s: string) => s.trim().toLowerCase();
  const exact = options.findIndex((o) => norm(o) === norm(reply));
  if (exact >= 0) return exact;
  const contained = options.findIndex((o) => norm(reply).includes(norm(o)));
  return contained >= 0 ? contained : 0;
}

/**
 * The server side; `model` may be a name or a lazy lookup (run only when a query goes to the server).
 * `customization` is asked only for a call that wants the customization's blend.
 */
export function serverSide(client: OpenAiClient, model: string | (() => Promise<string>), customization: () => Promise<string | undefined>): ServerSide {
  const chat = async (messages: ChatMessage[], o: ServerCallOptions & { maxTokens?: number; onToken?: (t: string, r: 'server') => void }) =>
    client.chat(
      { model: typeof model === 'string' ? model : await model(), messages, maxTokens: o.maxTokens ?? 128, customization: o.customized === false ? undefined : await customization() },
      { signal: o.signal, onToken: (t) => o.onToken?.(t, 'server') },
    );
  return {
    chooseOption: async (messages, options, o = {}) => pickOption((await chat(messages, { ...o, maxTokens: 16 })).text, options),
    generate: async (messages, o) => ({ text: (await chat(messages, o)).text }),
  };
}
