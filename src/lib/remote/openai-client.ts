// A client for any OpenAI-compatible server (our reference server, llama.cpp's
// server, Ollama, vLLM): streamed chat completions over server-sent events,
// abort, a timeout, retries with backoff only where a retry is safe, and
// typed errors: a refused, cut or timed-out answer (an error status, an error
// event in the stream, a stream that ends without [DONE]) is never returned
// as an answer. Crayon's extension (a customization made of blend weights) is
// used when the server has it and skipped when it doesn't.
import { AbortError, AppError, messageOf } from '../errors';

export interface ClientOptions {
  baseUrl: string; // e.g. http://127.0.0.1:8787/v1
  apiKey?: string;
  fetch: typeof fetch;
  timeoutMs?: number; // per request, default 15 s
  retries?: number; // default 2
}

export interface ChatParams {
  model: string;
  messages: { role: 'system' | 'user' | 'assistant'; content: string }[];
  maxTokens?: number;
  temperature?: number;
  logprobs?: boolean;
  customization?: string;
}

export interface ChatReply {
  text: string;
  logprobs: number[];
  finishReason: string | null;
}

/** The longest Retry-After (seconds) the client waits out before retrying. */
const MAX_RETRY_AFTER_S = 5;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new AbortError())), { once: true });
  });

export class OpenAiClient {
  private readonly base: string;
  constructor(private readonly o: ClientOptions) {
    this.base = o.baseUrl.replace(/\/+$/, '');
  }

  /** One HTTP request with timeout and typed errors; retried while nothing was received and a retry is safe. */
  private async request(path: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    const retries = this.o.retries ?? 2;
    for (let attempt = 0; ; attempt++) {
      const ctl = new AbortController();
      const onAbort = () => ctl.abort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let timedOut = false;
      const timer = setTimeout(() => ((timedOut = true), ctl.abort()), this.o.timeoutMs ?? 15_000);
      try {
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}) };
        const res = await this.o.fetch(`${this.base}${path}`, { ...init, headers, signal: ctl.signal });
        if (res.ok) return res;
        const after = Number(res.headers.get('retry-after'));
        // A server that asks for a long wait is not waited for: the caller (the router) answers elsewhere.
        const retryable = (res.status === 429 || res.status === 502 || res.status === 503) && !(after > MAX_RETRY_AFTER_S);
        if (retryable && attempt < retries) {
          await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : 250 * 2 ** attempt, signal);
          continue;
        }
        throw await httpError(res);
      } catch (e) {
        if (e instanceof AppError) throw e;
        if (signal?.aborted) throw new AbortError();
        if (timedOut) throw new AppError('timeout', `The server at ${this.base} did not answer within ${Math.round((this.o.timeoutMs ?? 15_000) / 1000)} s.`);
        if (attempt < retries) {
          await sleep(250 * 2 ** attempt, signal);
          continue;
        }
        throw new AppError('network', `Could not reach the server at ${this.base} (${messageOf(e)}).`);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      }
    }
  }

  async models(signal?: AbortSignal): Promise<string[]> {
    const r = (await (await this.request('/models', { method: 'GET' }, signal)).json()) as { data?: { id: string }[] };
    return (r.data ?? []).map((m) => m.id);
  }

  /** A Crayon server's adapter pools (GET /pools); empty for a server without the extension. */
  async pools(signal?: AbortSignal): Promise<{ id: string; adapters: string[] }[]> {
    try {
      const r = (await (await this.request('/pools', { method: 'GET' }, signal)).json()) as { data?: { id: string; adapters: string[] }[] };
      return (r.data ?? []).filter((p) => typeof p?.id === 'string' && Array.isArray(p.adapters));
    } catch (e) {
      if (e instanceof AppError && e.code === 'http' && (e.details?.status === 404 || e.details?.status === 405)) return [];
      throw e;
    }
  }

  /** Registers blend weights with a Crayon server; null when the server has no such extension. */
  async createCustomization(pool: string, weights: Record<string, number>, signal?: AbortSignal): Promise<string | null> {
    try {
      const r = (await (await this.request('/customizations', { method: 'POST', body: JSON.stringify({ pool, weights }) }, signal)).json()) as { id: string };
      return r.id;
    } catch (e) {
      if (e instanceof AppError && e.code === 'http' && (e.details?.status === 404 || e.details?.status === 405)) return null;
      throw e;
    }
  }

  /** A streamed chat completion; `onToken` sees each piece of text as it arrives. */
  async chat(p: ChatParams, opts: { signal?: AbortSignal; onToken?: (text: string) => void } = {}): Promise<ChatReply> {
    const body = { model: p.model, messages: p.messages, stream: true, max_tokens: p.maxTokens, temperature: p.temperature ?? 0, logprobs: p.logprobs || undefined, ...(p.customization ? { customization: p.customization } : {}) };
    const res = await this.request('/chat/completions', { method: 'POST', body: JSON.stringify(body) }, opts.signal);
    if (!res.body) throw new AppError('http', 'The server sent an empty stream.');
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const cancel = () => void reader.cancel().catch(() => {}); // closing the stream stops the server's generation too
    opts.signal?.addEventListener('abort', cancel, { once: true });
    let buf = '';
    const reply: ChatReply = { text: '', logprobs: [], finishReason: null };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (opts.signal?.aborted) throw new AbortError();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of event.split('\n')) {
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') return reply;
            const chunk = JSON.parse(data) as { error?: ServerErrorBody; choices?: { delta?: { content?: string }; finish_reason?: string | null; logprobs?: { content?: { logprob: number }[] } | null }[] };
            // An error event: the server stopped this answer (e.g. its timeout); what came before is not the answer.
            if (chunk.error) throw typedError(200, chunk.error);
            const c = chunk.choices?.[0];
            if (c?.delta?.content) {
              reply.text += c.delta.content;
              opts.onToken?.(c.delta.content);
            }
            for (const lp of c?.logprobs?.content ?? []) reply.logprobs.push(lp.logprob);
            if (c?.finish_reason) reply.finishReason = c.finish_reason;
          }
        }
      }
    } catch (e) {
      if (opts.signal?.aborted || e instanceof AbortError) throw new AbortError();
      if (e instanceof AppError) throw e;
      if (e instanceof SyntaxError) throw new AppError('http', 'The server sent a malformed stream.');
      throw new AppError('network', `The connection to the server broke off mid-answer (${messageOf(e)}).`);
    } finally {
      opts.signal?.removeEventListener('abort', cancel);
    }
    if (opts.signal?.aborted) throw new AbortError();
    // The stream ended without [DONE]: a cut answer, never passed off as a whole one.
    throw new AppError('network', `The server's answer broke off before its end (${reply.text.length} characters arrived), so it was not used.`, { partial: reply.text });
  }
}

interface ServerErrorBody {
  message?: string;
  code?: string | null;
}

async function httpError(res: Response): Promise<AppError> {
  let error: ServerErrorBody = {};
  try {
    const body = (await res.json()) as { error?: ServerErrorBody | string };
    error = typeof body.error === 'string' ? { message: body.error } : (body.error ?? {});
  } catch {
    // not JSON: keep the status
  }
  return typedError(res.status, error, Number(res.headers.get('retry-after')) || undefined);
}

/** A server's error (an HTTP status, or an error event inside a 200 stream) as a typed error. */
function typedError(status: number, error: ServerErrorBody, retryAfter?: number): AppError {
  const message = typeof error.message === 'string' ? error.message : `HTTP ${status}`;
  const errorCode = typeof error.code === 'string' ? error.code : undefined; // OpenAI's error.code, e.g. 'customization_not_found'
  const details = { status, ...(errorCode ? { errorCode } : {}), ...(retryAfter ? { retryAfter } : {}) };
  if (status === 401 || status === 403) return new AppError('unauthorized', `The server refused the API key: ${message}`, details);
  if (status === 429) return new AppError('rate-limited', `The server is busy (rate limit): ${message}`, details);
  if (status === 503) return new AppError('rate-limited', `The server is busy: ${message}`, details);
  if (errorCode === 'context_length_exceeded') return new AppError('context-overflow', `The conversation is too long for the server's model: ${message}`, details);
  if (status === 504 || errorCode === 'request_timeout') return new AppError('timeout', `The server stopped the answer at its time limit: ${message}`, details);
  return new AppError('http', `The server answered ${status}: ${message}`, details);
}
