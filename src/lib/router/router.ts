// Answers one query on the device or on the server, under the user's policy,
// and records where it ran, why, and the scores that decided it. The device
// and the server are passed in as two small interfaces, so this runs the same
// in the router worker, in Node tests and in the routing benchmark.
import { AbortError, isAppError, throwIfAborted } from '../errors';
import { cosine, decide, needsConfidence, type Decision, type RoutingPolicy, type Thresholds } from './policy';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /** A user turn: the policy it was asked under (what may leave the device depends on it); never sent. */
  askedUnder?: RoutingPolicy;
}

/** Exactly what left the device for one answer: the turns in the request, and whether blend weights went too. */
export interface Sent {
  messages: { role: ChatMessage['role']; content: string }[];
  blendWeights: boolean;
}

export interface Query {
  messages: ChatMessage[];
  /** Multiple choice: the candidate answers; the answer is the most likely one. */
  options?: string[];
  maxTokens?: number;
}

export interface StreamOptions {
  signal?: AbortSignal;
  onToken?: (text: string, route: 'device' | 'server') => void;
}

/** What the router needs from the on-device model. */
export interface DeviceSide {
  /** Crayon's feature of the query (the text the user asked), for scope. */
  embedQuery(messages: ChatMessage[], signal?: AbortSignal): Promise<Float32Array>;
  /** Log-likelihood of each option as the reply; returns per-option total log-probs. */
  scoreOptions(messages: ChatMessage[], options: string[], signal?: AbortSignal): Promise<number[]>;
  /** A free-form answer with its mean token log-probability. */
  generate(messages: ChatMessage[], opts: StreamOptions & { maxTokens?: number }): Promise<{ text: string; meanLogprob: number }>;
}

export interface ServerCallOptions {
  signal?: AbortSignal;
  /** Answer with the customization's blend (the default); false: the server's general model. */
  customized?: boolean;
}

/** What the router needs from the server (any OpenAI-compatible endpoint). */
export interface ServerSide {
  /** Picks among options (e.g. by logprobs or by matching the reply); returns the index. */
  chooseOption(messages: ChatMessage[], options: string[], opts?: ServerCallOptions): Promise<number>;
  generate(messages: ChatMessage[], opts: StreamOptions & ServerCallOptions & { maxTokens?: number }): Promise<{ text: string }>;
}

export interface Customization {
  /** Mean feature of the user's examples: the scope reference. */
  centroid: Float32Array;
}

export interface Answer {
  text: string;
  /** Index of the chosen option, for multiple choice. */
  choice?: number;
  decision: Decision;
  /** Set when the answer isn't where the decision wanted it (e.g. the server failed). */
  notice?: string;
  /** The device's draft when the answer was escalated to the server. */
  deviceDraft?: string;
  /** What was sent to the server for this answer (even when the server then failed); absent when nothing was. */
  sent?: Sent;
}

export interface RouterConfig {
  policy: RoutingPolicy;
  thresholds: Thresholds;
  customization: Customization | null;
}

/** The most likely option and its softmax probability: the device's multiple-choice confidence. */
export function softmaxTop(logps: number[]): { index: number; prob: number } {
  const max = Math.max(...logps);
  const exps = logps.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const index = logps.indexOf(max);
  return { index, prob: exps[index] / sum };
}

export async function answer(query: Query, cfg: RouterConfig, device: DeviceSide, server: ServerSide | null, opts: StreamOptions = {}): Promise<Answer> {
  const { signal } = opts;
  const th = cfg.thresholds;
  let scope: number | undefined;
  if (cfg.policy === 'auto' && cfg.customization) {
    scope = cosine(await device.embedQuery(query.messages, signal), cfg.customization.centroid);
  }

  // The device's own answer, when the decision needs its confidence or will use it.
  let draft: { text: string; choice?: number; confidence: NonNullable<Parameters<typeof decide>[2]['confidence']> } | null = null;
  const wantsDraft = cfg.policy === 'local-only' || (cfg.policy === 'auto' && needsConfidence(cfg.policy, th, scope)) || !server;
  if (wantsDraft) draft = await deviceAnswer(query, device, opts);

  const decision = decide(cfg.policy, th, { scope, confidence: draft?.confidence }, server !== null);
  if (decision.route === 'device') {
    draft ??= await deviceAnswer(query, device, opts);
    return { text: draft.text, choice: draft.choice, decision, notice: decision.reason === 'server-unavailable' ? 'No server is set up, so the device answered.' : undefined };
  }

  try {
    const served = await serverAnswer(query, server!, { ...opts, customized: decision.customizedServer });
    return { ...served, decision, deviceDraft: draft?.text };
  } catch (e) {
    if (e instanceof AbortError || signal?.aborted) throw e;
    // The server failed: the device answers, and the user is told why.
    draft ??= await deviceAnswer(query, device, opts);
    const why = (isAppError(e) ? e.message : String(e)).replace(/\.$/, '');
    return { text: draft.text, choice: draft.choice, decision, notice: `The server could not answer (${why}), so the device answered instead.` };
  }
}

async function deviceAnswer(query: Query, device: DeviceSide, opts: StreamOptions) {
  throwIfAborted(opts.signal);
  if (query.options?.length) {
    const logps = await device.scoreOptions(query.messages, query.options, opts.signal);
    const top = softmaxTop(logps);
    return { text: query.options[top.index], choice: top.index, confidence: { kind: 'mc' as const, topProb: top.prob } };
  }
  const g = await device.generate(query.messages, { ...opts, maxTokens: query.maxTokens });
  return { text: g.text, confidence: { kind: 'free' as const, meanLogprob: g.meanLogprob } };
}

async function serverAnswer(query: Query, server: ServerSide, opts: StreamOptions & ServerCallOptions): Promise<{ text: string; choice?: number }> {
  if (query.options?.length) {
    const choice = await server.chooseOption(query.messages, query.options, { signal: opts.signal, customized: opts.customized });
    return { text: query.options[choice], choice };
  }
  const g = await server.generate(query.messages, { ...opts, maxTokens: query.maxTokens });
  return { text: g.text };
}
