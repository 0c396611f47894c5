// The reference Crayon server over node:http: OpenAI-compatible chat
// completions (streamed as server-sent events or not), model listing, and
// Crayon's extension: POST /v1/customizations takes blend weights (never
// examples) and returns an id that chat requests name. Hardened: bearer
// tokens, CORS allowlist, body and token limits, a per-client rate limit,
// timeouts, and OpenAI-shaped errors for everything that goes wrong.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ServerModel } from './llama';
import { HttpError, parseChatRequest, parseCustomization, type CustomizationRequest } from './validate';

export interface ServerConfig {
  tokens: string[]; // accepted bearer tokens; empty = open (local use)
  corsOrigins: string[]; // allowed browser origins
  maxBodyBytes: number;
  maxTokens: number;
  rateLimit: { capacity: number; refillPerSec: number }; // requests per client
  requestTimeoutMs: number;
  maxCustomizations: number;
}

export const DEFAULT_CONFIG: ServerConfig = {
  tokens: [],
  corsOrigins: ['http://127.0.0.1:4173', 'http://localhost:4173'],
  maxBodyBytes: 64 * 1024,
  maxTokens: 256,
  rateLimit: { capacity: 120, refillPerSec: 20 },
  requestTimeoutMs: 60_000,
  maxCustomizations: 1000,
};

class Buckets {
  private readonly b = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly cfg: ServerConfig['rateLimit']) {}
  take(key: string): boolean {
    const now = Date.now();
    const s = this.b.get(key) ?? { tokens: this.cfg.capacity, at: now };
    s.tokens = Math.min(this.cfg.capacity, s.tokens + ((now - s.at) / 1000) * this.cfg.refillPerSec);
    s.at = now;
    this.b.set(key, s);
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }
}

function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(e.status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } }));
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

export function createCrayonServer(model: ServerModel, cfg: ServerConfig = DEFAULT_CONFIG): Server {
  const customizations = new Map<string, CustomizationRequest>();
  const buckets = new Buckets(cfg.rateLimit);
  const poolIndex = new Map([...model.pools.values()].map((p) => [p.id, new Set(p.adapters.keys())]));

  const cors = (req: IncomingMessage, res: ServerResponse): boolean => {
    const origin = req.headers.origin;
    if (!origin) return true;
    if (!cfg.corsOrigins.includes(origin)) return false;
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'origin');
    res.setHeader('access-control-allow-headers', 'authorization, content-type');
    res.setHeader('access-control-allow-methods', 'GET, POST, OPTIONS');
    return true;
  };

  const auth = (req: IncomingMessage): string => {
    const h = req.headers.authorization ?? '';
    const token = h.startsWith('Bearer ') ? h.slice(7) : '';
    if (cfg.tokens.length && !cfg.tokens.includes(token)) throw new HttpError(401, 'A valid API key is required (Authorization: Bearer <key>).', 'authentication_error', null, 'invalid_api_key');
    return token || req.socket.remoteAddress || 'anonymous';
  };

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseChatRequest(await readBody(req, cfg.maxBodyBytes), { maxTokens: cfg.maxTokens, maxMessages: 64, maxChars: 16_000 });
    const served = [model.name, ...[...customizations.keys()].map((id) => `${model.name}:${id}`)];
    const modelCz = body.model.startsWith(`${model.name}:`) ? body.model.slice(model.name.length + 1) : null;
    if (!served.includes(body.model) && !modelCz) throw new HttpError(404, `The model "${body.model}" does not exist; see GET /v1/models.`, 'invalid_request_error', 'model', 'model_not_found');
    const czId = body.customization ?? modelCz;
    const blend = czId ? customizations.get(czId) : null;
    if (czId && !blend) throw new HttpError(404, `No customization "${czId}" on this server (it may have been forgotten after a restart).`, 'invalid_request_error', 'customization', 'customization_not_found');
    const controller = new AbortController();
    res.on('close', () => controller.abort()); // the client went away: stop generating
    const timer = setTimeout(() => controller.abort(), cfg.requestTimeoutMs);
    const id = `chatcmpl-${randomBytes(8).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const logprobs: { token: string; logprob: number; top_logprobs: [] }[] = [];
    try {
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        const chunk = (delta: object, finish: string | null, lp?: object) =>
          res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: lp ?? null }] })}\n\n`);
        chunk({ role: 'assistant', content: '' }, null);
        const r = await model.generate(body.messages, blend ?? null, { ...body, signal: controller.signal, onToken: (text, lp) => chunk({ content: text }, null, body.logprobs ? { content: [{ token: text, logprob: lp, top_logprobs: [] }] } : undefined) });
        chunk({}, r.finish);
        res.end('data: [DONE]\n\n');
        return;
      }
      const r = await model.generate(body.messages, blend ?? null, { ...body, signal: controller.signal, onToken: (text, lp) => logprobs.push({ token: text, logprob: lp, top_logprobs: [] }) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id, object: 'chat.completion', created, model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: r.text }, finish_reason: r.finish, logprobs: body.logprobs ? { content: logprobs } : null }],
        usage: { completion_tokens: r.tokens },
      }));
    } catch (e) {
      const status = (e as { status?: number }).status;
      throw status ? new HttpError(status, (e as Error).message) : e;
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
    const client = auth(req);
    if (!buckets.take(client)) throw new HttpError(429, 'Too many requests; slow down.', 'rate_limit_error', null, 'rate_limit_exceeded');
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1/models' && req.method === 'GET') {
      const data = [model.name, ...[...customizations.keys()].map((id) => `${model.name}:${id}`)].map((id) => ({ id, object: 'model', created: 0, owned_by: 'crayon' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    } else if (path === '/v1/pools' && req.method === 'GET') {
      const data = [...model.pools.values()].map((p) => ({ id: p.id, adapters: [...p.adapters.keys()] }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
    } else if (path === '/v1/customizations' && req.method === 'POST') {
      const cz = parseCustomization(await readBody(req, cfg.maxBodyBytes), poolIndex);
      if (customizations.size >= cfg.maxCustomizations) customizations.delete(customizations.keys().next().value!);
      const id = `cz-${randomBytes(8).toString('hex')}`;
      customizations.set(id, cz);
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id, object: 'customization', model: `${model.name}:${id}`, ...cz }));
    } else if (path === '/v1/chat/completions' && req.method === 'POST') {
      await chat(req, res);
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
  return server;
}
