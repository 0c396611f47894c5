// The router worker's core: keeps the routing setup, builds the device side
// over the engine (a Runtime, in the worker reached through a MessagePort) and
// the server side over the OpenAI-compatible client, and answers queries.
// A customization reaches the server only as its blend weights, registered
// once per server and weights (POST /v1/customizations) on the first query
// that goes there; a server without the extension is used plainly. Every
// server call passes the local-only guard (`outbound`): turns asked under
// "This device only" never leave, earlier turns only when the user allows,
// and each answer carries exactly what was sent.
import { AppError, isAppError } from '../errors';
import type { Handlers } from '../protocol/rpc';
import { OpenAiClient } from '../remote/openai-client';
import type { Runtime } from '../runtimes/types';
import type { RouterProtocol, RouterSetup } from './protocol';
import { answer, type ChatMessage, type Sent, type ServerSide } from './router';
import { deviceSide, serverSide } from './sides';

export interface RouterHostDeps {
  device: Runtime;
  fetch: typeof fetch;
}

/** The server pool that covers every adapter of the blend (the same clusters), or null. */
export function matchPool(pools: { id: string; adapters: string[] }[], adapterIds: string[]): string | null {
  const hit = pools.find((p) => adapterIds.every((id) => p.adapters.includes(id)));
  return hit?.id ?? null;
}

/**
 * The local-only guard: what of a conversation may leave the device for one query. Nothing under
 * "This device only", nor when the question itself was asked under it; else the question, plus
 * (with history 'shared') the earlier turns asked under Automatic or Server only, each with its
 * answer. A turn with no policy recorded stays (fail closed). Only role and content go.
 */
export function outbound(setup: Pick<RouterSetup, 'policy' | 'history'>, messages: ChatMessage[]): Sent['messages'] | null {
  if (setup.policy === 'local-only') return null;
  const mayLeave = (p: ChatMessage['askedUnder']) => p === 'auto' || p === 'server-only';
  const question = messages.at(-1);
  if (!question || question.role !== 'user' || question.askedUnder === 'local-only') return null;
  const out: Sent['messages'] = [];
  let turnMayLeave = false; // the user turn an assistant reply answers
  for (const m of messages.slice(0, -1)) {
    if (m.role === 'user') turnMayLeave = setup.history === 'shared' && mayLeave(m.askedUnder);
    if (m.role === 'system' || turnMayLeave) out.push({ role: m.role, content: m.content });
  }
  out.push({ role: 'user', content: question.content });
  return out;
}

/** Every call to the server goes through the guard; what each call sent is recorded for the answer's disclosure. */
function guarded(side: ServerSide, setup: RouterSetup, record: (s: Sent) => void): ServerSide {
  const allowed = (m: ChatMessage[]) => {
    const out = outbound(setup, m);
    if (!out) throw new AppError('invalid-argument', 'This question stays on this device.');
    return out;
  };
  const sent = (messages: Sent['messages'], customized?: boolean) => record({ messages, blendWeights: customized !== false && setup.customization !== null });
  return {
    chooseOption: (m, o, opts) => {
      const out = allowed(m);
      sent(out, opts?.customized);
      return side.chooseOption(out, o, opts);
    },
    generate: (m, o) => {
      const out = allowed(m);
      sent(out, o.customized);
      return side.generate(out, o);
    },
  };
}

export function routerHandlers(deps: RouterHostDeps): Handlers<RouterProtocol> {
  let setup: RouterSetup | null = null;
  // Server customization ids by server URL + weights, so a customization is registered once.
  const registered = new Map<string, Promise<string | null>>();

  const models = new Map<string, string>();
  /** The configured model, else the server's first (asked once, only when a query goes there). */
  const modelOf = async (s: NonNullable<RouterSetup['server']>, signal?: AbortSignal): Promise<string> => {
    if (s.model) return s.model;
    if (!models.has(s.baseUrl)) {
      const first = (await client(s).models(signal))[0];
      if (!first) throw new AppError('http', 'The server lists no models.');
      models.set(s.baseUrl, first);
    }
    return models.get(s.baseUrl)!;
  };

  const client = (s: NonNullable<RouterSetup['server']>) => new OpenAiClient({ baseUrl: s.baseUrl, apiKey: s.apiKey || undefined, fetch: deps.fetch });

  const serverCustomization = (signal?: AbortSignal): Promise<string | null> => {
    const s = setup?.policy === 'local-only' ? null : setup?.server; // the guard: under local-only not even the weights go
    const cz = setup?.customization;
    if (!s || !cz) return Promise.resolve(null);
    const weights = Object.fromEntries(Object.entries(cz.weights).filter(([, w]) => w !== 0));
    const key = `${s.baseUrl}\n${JSON.stringify(weights)}`;
    let p = registered.get(key);
    if (!p) {
      const c = client(s);
      p = (async () => {
        const pool = matchPool(await c.pools(signal), Object.keys(weights));
        return pool ? c.createCustomization(pool, weights, signal) : null;
      })();
      registered.set(key, p);
      p.catch(() => registered.delete(key)); // a failure is retried by the next query
    }
    return p;
  };

  /** A server that restarted has forgotten our customization: register it again and retry once. */
  const forgetStale = (side: ServerSide): ServerSide => {
    const retry = async <T>(run: () => Promise<T>): Promise<T> => {
      try {
        return await run();
      } catch (e) {
        if (!(isAppError(e) && e.details?.errorCode === 'customization_not_found')) throw e;
        registered.clear();
        return run();
      }
    };
    return {
      chooseOption: (m, o, opts) => retry(() => side.chooseOption(m, o, opts)),
      generate: (m, o) => retry(() => side.generate(m, o)),
    };
  };

  return {
    configure: async (params) => {
      setup = params;
      return null;
    },
    serverCustomization: async (_p, ctx) => serverCustomization(ctx.signal),
    answer: async ({ query }, ctx) => {
      if (!setup) throw new AppError('invalid-argument', 'The router is not configured yet.');
      const cfg = setup;
      // The guard: under local-only, or for a question asked under it, the server is not even named to the router.
      const s = outbound(cfg, query.messages) ? cfg.server : null;
      let sent: Sent | undefined;
      const server = s ? guarded(forgetStale(serverSide(client(s), () => modelOf(s, ctx.signal), async () => (await serverCustomization(ctx.signal)) ?? undefined)), cfg, (x) => (sent = x)) : null;
      const a = await answer(query, { policy: cfg.policy, thresholds: cfg.thresholds, customization: cfg.customization }, deviceSide(deps.device), server, {
        signal: ctx.signal,
        onToken: (text, route) => ctx.progress({ text, route }),
      });
      const kept = !s && cfg.server && cfg.policy !== 'local-only';
      return { ...a, ...(sent ? { sent } : {}), ...(kept && a.decision.reason === 'server-unavailable' ? { notice: 'This question was asked under “This device only”, so it stays on this device.' } : {}) };
    },
  };
}
