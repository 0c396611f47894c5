// Validation of every request field the server accepts, with messages that
// name the field. Anything the server doesn't know is rejected, so a client
// can't smuggle data (e.g. a customization's examples) through it.

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds, sent as Retry-After (503, 429). */
    readonly retryAfter = 0,
  ) {
    super(message);
  }
}

const bad = (param: string, message: string) => new HttpError(400, message, 'invalid_request_error', param);

export interface ChatRequest {
  model: string;
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  stream: boolean;
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number | null;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  customization: string | null;
}

const CHAT_FIELDS = new Set(['model', 'messages', 'stream', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'seed', 'stop', 'logprobs', 'top_logprobs', 'customization', 'n', 'user', 'stream_options']);

function obj(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('body', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function num(o: Record<string, unknown>, key: string, fallback: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(key, `"${key}" must be a number.`);
  if (v < min || v > max) throw bad(key, `"${key}" must be between ${min} and ${max} (got ${v}).`);
  return v;
}

export function parseChatRequest(body: unknown, limits: { maxTokens: number; maxMessages: number; maxChars: number }): ChatRequest {
  const o = obj(body);
  for (const k of Object.keys(o)) if (!CHAT_FIELDS.has(k)) throw bad(k, `Unknown field "${k}".`);
  if (typeof o.model !== 'string' || o.model.length === 0 || o.model.length > 200) throw bad('model', '"model" must be a non-empty string.');
  if (!Array.isArray(o.messages) || o.messages.length === 0) throw bad('messages', '"messages" must be a non-empty array.');
  if (o.messages.length > limits.maxMessages) throw bad('messages', `At most ${limits.maxMessages} messages are accepted.`);
  let chars = 0;
  const messages = o.messages.map((m, i) => {
    if (!m || typeof m !== 'object') throw bad(`messages[${i}]`, `messages[${i}] must be an object.`);
    const { role, content } = m as { role?: unknown; content?: unknown };
    if (role !== 'system' && role !== 'user' && role !== 'assistant') throw bad(`messages[${i}].role`, `messages[${i}].role must be "system", "user" or "assistant".`);
    if (typeof content !== 'string') throw bad(`messages[${i}].content`, `messages[${i}].content must be a string.`);
    chars += content.length;
    return { role: role as ChatRequest['messages'][number]['role'], content };
  });
  if (chars > limits.maxChars) throw bad('messages', `The messages are too long (${chars} characters; at most ${limits.maxChars}).`);
  if (o.n !== undefined && o.n !== 1) throw bad('n', 'Only n = 1 is supported.');
  const maxKey = o.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const maxTokens = num(o, maxKey, Math.min(128, limits.maxTokens), 1, limits.maxTokens);
  if (!Number.isInteger(maxTokens)) throw bad(maxKey, `"${maxKey}" must be an integer.`);
  let stop: string[] = [];
  if (typeof o.stop === 'string' || Array.isArray(o.stop)) {
    const list: unknown[] = typeof o.stop === 'string' ? [o.stop] : o.stop;
    if (list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 64)) throw bad('stop', '"stop" must be up to 4 non-empty strings of at most 64 characters.');
    stop = list as string[];
  } else if (o.stop !== undefined && o.stop !== null) throw bad('stop', '"stop" must be a string or an array of strings.');
  if (o.stream !== undefined && typeof o.stream !== 'boolean') throw bad('stream', '"stream" must be a boolean.');
  if (o.logprobs !== undefined && typeof o.logprobs !== 'boolean') throw bad('logprobs', '"logprobs" must be a boolean.');
  const seed = o.seed === undefined || o.seed === null ? null : num(o, 'seed', 0, 0, 2 ** 31 - 1);
  if (o.customization !== undefined && o.customization !== null && (typeof o.customization !== 'string' || !/^cz-[a-z0-9]{8,64}$/.test(o.customization))) {
    throw bad('customization', '"customization" must be an id returned by POST /v1/customizations.');
  }
  return {
    model: o.model,
    messages,
    stream: o.stream === true,
    maxTokens,
    temperature: num(o, 'temperature', 0, 0, 2),
    topP: num(o, 'top_p', 1, 0.01, 1),
    seed: seed === null ? null : Math.floor(seed),
    stop,
    logprobs: o.logprobs === true,
    topLogprobs: Math.floor(num(o, 'top_logprobs', 0, 0, 5)),
    customization: (o.customization as string | undefined) ?? null,
  };
}

export interface CustomizationRequest {
  pool: string;
  weights: Record<string, number>;
}

/** `{pool, weights}` and nothing else: the server learns blend weights, never examples. */
export function parseCustomization(body: unknown, pools: Map<string, Set<string>>): CustomizationRequest {
  const o = obj(body);
  for (const k of Object.keys(o)) if (k !== 'pool' && k !== 'weights') throw bad(k, `Unknown field "${k}": a customization is only {pool, weights}.`);
  if (typeof o.pool !== 'string') throw bad('pool', '"pool" must be a string.');
  const adapters = pools.get(o.pool);
  if (!adapters) throw new HttpError(404, `No pool named "${o.pool}" on this server; see GET /v1/pools.`, 'invalid_request_error', 'pool', 'pool_not_found');
  if (!o.weights || typeof o.weights !== 'object' || Array.isArray(o.weights)) throw bad('weights', '"weights" must be an object {adapterId: weight}.');
  const entries = Object.entries(o.weights as Record<string, unknown>);
  if (entries.length === 0) throw bad('weights', '"weights" names no adapter.');
  const weights: Record<string, number> = {};
  for (const [id, w] of entries) {
    if (!adapters.has(id)) throw bad(`weights.${id}`, `Pool "${o.pool}" has no adapter "${id}".`);
    if (typeof w !== 'number' || !Number.isFinite(w) || Math.abs(w) > 4) throw bad(`weights.${id}`, `The weight of "${id}" must be a finite number in [-4, 4].`);
    weights[id] = w;
  }
  return { pool: o.pool, weights };
}
