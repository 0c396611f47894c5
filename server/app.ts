// The reference Crayon server over node:http: OpenAI-compatible chat
// completions (streamed as server-sent events or not), model listing, and
// Crayon's extension: POST /v1/customizations takes blend weights (never
// examples) and returns an id that only its caller can name. Hardened: bearer
// tokens compared in constant time, wrong keys throttled, CORS allowlist,
// body and token limits, a per-client rate limit in a bounded table, bounded
// llama.cpp memory (503 + Retry-After beyond it), timeouts, and OpenAI-shaped
// errors for everything that goes wrong, in a stream too.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BusyError, ContextOverflowError, GenerationAborted, type ServerModel } from './llama';
import { Buckets, hashKeys, matchKey } from './limits';
import { Tenancy } from './tenancy';
import { HttpError, parseChatRequest, parseCustomization } from './validate';

export interface ServerConfig {
  tokens: string[]; // accepted bearer tokens; empty = open (local use)
  corsOrigins: string[]; // allowed browser origins
  maxBodyBytes: number;
  maxTokens: number;
  rateLimit: { capacity: number; refillPerSec: number }; // requests per client
  /** Wrong API keys per client address before it must wait (then refilled at this rate). */
  authFailures: { capacity: number; refillPerSec: number };
  /** Entries of each client table (rate limit, wrong keys) at most: least recently used go first. */
  maxClients: number;
  requestTimeoutMs: number;
  /** Customizations per caller (its key; in open mode its address): least recently used go first. */
  maxCustomizations: number;
}

export const DEFAULT_CONFIG: ServerConfig = {
  tokens: [],
  corsOrigins: ['http://127.0.0.1:4173', 'http://localhost:4173'],
  maxBodyBytes: 64 * 1024,
  maxTokens: 256,
  rateLimit: { capacity: 120, refillPerSec: 20 },
  authFailures: { capacity: 10, refillPerSec: 0.2 },
  maxClients: 10_000,
  requestTimeoutMs: 60_000,
  maxCustomizations: 64,
};

/** What the server holds now: every table is bounded, and these numbers show it. */
export interface ServerStats {
  rateLimitEntries: number;
  authFailureEntries: number;
  callers: number;
  customizations: number;
  contexts: number;
  queued: number;
}

export type CrayonServer = Server & { stats(): ServerStats };

const errorBody = (e: HttpError) => JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });

/** An OpenAI-shaped error; once a stream has begun, an error event and then the end (never a silent cut). */
function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    if (!res.writableEnded) res.end(`data: ${errorBody(e)}\n\n`);
    return;
  }
  res.writeHead(e.status, { 'content-type': 'application/json', ...(e.retryAfter ? { 'retry-after': String(e.retryAfter) } : {}) });
  res.end(errorBody(e));
}

function readBody(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return reject(new HttpError(413, `The body is larger than ${limit} bytes.`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `The body is larger than ${limit} bytes.`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'The body is not valid JSON.'));
      }
    });
    req.on('error', () => reject(new HttpError(400, 'The request body could not be read.')));
  });
}

export function createCrayonServer(model: ServerModel, cfg: ServerConfig = DEFAULT_CONFIG): CrayonServer {
  const tenancy = new Tenancy(cfg.maxCustomizations, cfg.tokens.length ? cfg.tokens.length : cfg.maxClients);
  const buckets = new Buckets(cfg.rateLimit, cfg.maxClients);
  const wrongKeys = new Buckets(cfg.authFailures, cfg.maxClients);
  const keys = hashKeys(cfg.tokens);
  const poolIndex = new Map([...model.pools.values()].map((p) => [p.id, new Set(p.adapters.keys())]));

  const cors = (req: IncomingMessage, res: ServerResponse): boolean => {
    const origin = req.headers.origin;
    if (!origin) return true;
    if (!cfg.corsOrigins.includes(origin)) return false;
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'origin');
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    res.setHeader('access-control-expose-headers', 'retry-after');
    return true;
  };

  /**
   * The caller: `key:<n>` for the n-th configured key, or in open mode `addr:<address>` (a bearer
   * string sent to an open server names nobody, so it can't grow any table). Wrong keys are counted
   * per address, and an address over its budget is refused before its key is even compared.
   */
  const auth = (req: IncomingMessage): string => {
    const addr = req.socket.remoteAddress ?? 'unknown';
    if (!keys.length) return `addr:${addr}`;
    const wait = wrongKeys.blockedFor(addr);
    if (wait) throw new HttpError(429, `Too many wrong API keys from this address; retry in ${wait} s.`, 'rate_limit_error', null, 'too_many_wrong_keys', wait);
    const h = req.headers.authorization ?? '';
    const i = matchKey(keys, h.startsWith('Bearer ') ? h.slice(7) : '');
    if (i < 0) {
      wrongKeys.charge(addr);
      throw new HttpError(401, 'A valid API key is required (Authorization: Bearer <key>).', 'authentication_error', null, 'invalid_api_key');
    }
    return `key:${i}`;
  };

  const modelName = (czId: string) => `${model.name}:${czId}`;

  async function chat(req: IncomingMessage, res: ServerResponse, caller: string): Promise<void> {
    const body = parseChatRequest(await readBody(req, cfg.maxBodyBytes), { maxTokens: cfg.maxTokens, maxMessages: 64, maxChars: 16_000 });
    const modelCz = body.model.startsWith(`${model.name}:`) ? body.model.slice(model.name.length + 1) : null;
    if (body.model !== model.name && !modelCz) throw new HttpError(404, `The model "${body.model}" does not exist; see GET /v1/models.`, 'invalid_request_error', 'model', 'model_not_found');
    const czId = body.customization ?? modelCz;
    // Another caller's customization and one that never existed get the same answer.
    const blend = czId ? tenancy.get(caller, czId) : null;
    if (czId && !blend) throw new HttpError(404, `No customization "${czId}" of yours on this server (it may have been forgotten after a restart, or replaced by newer ones).`, 'invalid_request_error', 'customization', 'customization_not_found');
    // Checked before anything is sent: a prompt that can't fit is a 400, never an empty 200.
    try {
      model.promptTokens(body.messages, body.maxTokens);
    } catch (e) {
      if (e instanceof ContextOverflowError) throw new HttpError(400, e.message, 'invalid_request_error', 'messages', e.code);
      throw e;
    }
    const controller = new AbortController();
    res.on('close', () => controller.abort()); // the client went away: stop generating
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), controller.abort()), cfg.requestTimeoutMs);
    const id = `chatcmpl-${randomBytes(8).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const logprobs: { token: string; logprob: number; top_logprobs: [] }[] = [];
    // A stream's headers go once a sequence is held, so a request refused or timed out while queued gets its real status.
    const chunk = (delta: object, finish: string | null, lp?: object) =>
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: lp ?? null }] })}\n\n`);
    try {
      const r = await model.generate(body.messages, blend ?? null, {
        ...body,
        signal: controller.signal,
        onStart: () => {
          if (!body.stream) return;
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
          chunk({ role: 'assistant', content: '' }, null);
        },
        onToken: body.stream
          ? (text, lp) => chunk({ content: text }, null, body.logprobs ? { content: [{ token: text, logprob: lp, top_logprobs: [] }] } : undefined)
          : (text, lp) => logprobs.push({ token: text, logprob: lp, top_logprobs: [] }),
      });
      if (body.stream) {
        chunk({}, r.finish);
        res.end('data: [DONE]\n\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id, object: 'chat.completion', created, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finish, logprobs: body.logprobs ? { content: logprobs } : null }],
        usage: { completion_tokens: r.tokens },
      }));
    } catch (e) {
      if (e instanceof BusyError) throw new HttpError(503, e.message, 'server_error', null, 'server_busy', e.retryAfter);
      if (e instanceof GenerationAborted && timedOut) {
        throw new HttpError(504, `The answer took longer than the server's limit of ${cfg.requestTimeoutMs / 1000} s and was stopped${e.text ? ` after ${e.text.length} characters` : ''}; nothing of it is passed off as complete.`, 'server_error', null, 'request_timeout');
      }
      if (e instanceof GenerationAborted) throw new HttpError(499, 'The client closed the request.', 'invalid_request_error', null, 'client_closed');
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!cors(req, res)) throw new HttpError(403, `Origin ${req.headers.origin} is not allowed.`, 'permission_error');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    const caller = auth(req);
    const wait = buckets.takeOr(caller);
    if (wait) throw new HttpError(429, `Too many requests; retry in ${wait} s.`, 'rate_limit_error', null, 'rate_limit_exceeded', wait);
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1/models' && req.method === 'GET') {
      const data = [model.name, ...tenancy.list(caller).map((c) => modelName(c.id))].map((id) => ({ id, object: 'model', created: 0, owned_by: 'crayon' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    } else if (path === '/v1/pools' && req.method === 'GET') {
      const data = [...model.pools.values()].map((p) => ({ id: p.id, adapters: [...p.adapters.keys()] }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    } else if (path === '/v1/customizations' && req.method === 'POST') {
      const cz = tenancy.add(caller, parseCustomization(await readBody(req, cfg.maxBodyBytes), poolIndex));
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ...cz, object: 'customization', model: modelName(cz.id) }));
    } else if (path === '/v1/chat/completions' && req.method === 'POST') {
      await chat(req, res, caller);
    } else if (['/v1/models', '/v1/pools', '/v1/customizations', '/v1/chat/completions'].includes(path)) {
      throw new HttpError(405, `${req.method} is not allowed on ${path}.`);
    } else {
      throw new HttpError(404, `No route ${path}.`, 'invalid_request_error', null, 'not_found');
    }
  }

  const server = createServer((req, res) => {
    route(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) sendError(res, e);
      else {
        console.error('[crayon-server]', e);
        sendError(res, new HttpError(500, 'The server failed to answer this request.', 'server_error'));
      }
    });
  });
  server.requestTimeout = cfg.requestTimeoutMs;
  server.headersTimeout = 10_000;
  const stats = (): ServerStats => ({
    rateLimitEntries: buckets.size,
    authFailureEntries: wrongKeys.size,
    ...tenancy.size,
    contexts: model.contextKeys.length,
    queued: model.queued,
  });
  return Object.assign(server, { stats });
}
