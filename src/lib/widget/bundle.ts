// A saved assistant as a portable, versioned bundle: what the embeddable
// widget needs to rebuild it on another site, where the browser partitions
// storage by the top-level site and the app's pools and assistants are out of
// reach. Model and pool by id and URL, blend weights, τ, the scope reference,
// routing, the server's URL, the origins allowed to embed it; never an API key
// and never the examples. `parseBundle` checks everything strictly (schema,
// sizes, finite numbers, a known model) and throws a typed error naming the
// field; `makeBundle` builds one and checks it the same way.
import { AppError } from '../errors';
import { CATALOG } from '../models/catalog';
import type { RoutingPolicy, Thresholds } from '../router/policy';
import { parseOrigin } from './origins';

export const BUNDLE_FORMAT = 'crayon-assistant';
export const BUNDLE_VERSION = 1;

/** The bundled reference model (the app's world/device/), the one the bundled pool was made for. */
export const REFERENCE_MODEL_ID = 'reference';

export const BUNDLE_LIMITS = {
  /** The bundle as JSON text, in UTF-8 bytes. */
  bytes: 64 * 1024,
  name: 80,
  id: 64,
  url: 2048,
  adapters: 64,
  /** The scope reference's length (the model's feature size: 128 for the reference model, 576 for SmolLM2-135M). */
  centroid: 4096,
  origins: 32,
};

export interface AssistantBundle {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  name: string;
  /** A model this app knows (`reference` or a catalog id) and where to download it: a folder URL ending in '/', or a GGUF file's URL. */
  model: { id: string; url: string };
  /** The adapter pool: a folder with pool.json (as the app's world/device-pool/), or a pool file exported by the app. Null: the base model. */
  pool: { id: string; url: string } | null;
  blend: { mode: 'delta' | 'factor'; weights: Record<string, number> };
  tau: number;
  /** The examples' mean feature, for scope; null: routing judges confidence only. */
  centroid: number[] | null;
  routing: { policy: RoutingPolicy; thresholds: Thresholds };
  /** The OpenAI-compatible server questions may go to (no API key: a bundle is public). Null: the device answers everything. */
  server: { url: string } | null;
  /** Origins allowed to embed this assistant, exactly as event.origin spells them. */
  allowedOrigins: string[];
}

/** The models a bundle may name. */
export function knownModelIds(): string[] {
  return [REFERENCE_MODEL_ID, ...CATALOG.map((e) => e.id)];
}

type Json = Record<string, unknown>;
const bad = (path: string, why: string) => new AppError('bad-format', `The assistant bundle is not valid: ${path} ${why}.`, { path });
const POLICIES: RoutingPolicy[] = ['auto', 'local-only', 'server-only'];
// A bundle is public: anything that looks like a credential is refused, wherever it is.
const SECRET_KEY = /^(api[-_]?key|apikey|token|secret|password|authorization|bearer)$/i;

function object(x: unknown, path: string, keys: string[]): Json {
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw bad(path, 'must be an object');
  const extra = Object.keys(x).find((k) => !keys.includes(k));
  if (extra !== undefined) throw bad(`${path}.${extra}`, `is not a field of the bundle (allowed: ${keys.join(', ')})`);
  return x as Json;
}

function text(x: unknown, path: string, max: number): string {
  if (typeof x !== 'string' || x.trim() === '') throw bad(path, 'must be a non-empty string');
  if (x.length > max) throw new AppError('too-large', `The assistant bundle's ${path} is ${x.length} characters long; at most ${max} are allowed.`, { path, limit: max });
  return x;
}

function id(x: unknown, path: string): string {
  const s = text(x, path, BUNDLE_LIMITS.id);
  if (!/^[\w.-]+$/.test(s)) throw bad(path, 'may hold only letters, digits, ".", "_" and "-"');
  return s;
}

function httpUrl(x: unknown, path: string): string {
  const s = text(x, path, BUNDLE_LIMITS.url);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw bad(path, 'must be an absolute http(s) URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(path, 'must be an absolute http(s) URL');
  if (u.username || u.password) throw bad(path, 'must not carry a user name or password');
  return u.toString();
}

function finite(x: unknown, path: string, min: number, max: number): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(path, 'must be a finite number');
  if (x < min || x > max) throw bad(path, `must be between ${min} and ${max} (got ${x})`);
  return x;
}

function list(x: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(x)) throw bad(path, 'must be an array');
  if (x.length > max) throw new AppError('too-large', `The assistant bundle's ${path} has ${x.length} entries; at most ${max} are allowed.`, { path, limit: max });
  return x;
}

function noSecrets(x: unknown, path: string): void {
  if (!x || typeof x !== 'object') return;
  for (const [k, v] of Object.entries(x)) {
    if (SECRET_KEY.test(k)) throw bad(`${path}.${k}`, 'looks like a credential; a bundle is public and never carries an API key');
    noSecrets(v, `${path}.${k}`);
  }
}

function weights(x: unknown, path: string): Record<string, number> {
  if (!x || typeof x !== 'object' || Array.isArray(x)) throw bad(path, 'must be an object');
  const entries = Object.entries(x);
  if (entries.length > BUNDLE_LIMITS.adapters) throw new AppError('too-large', `The assistant bundle blends ${entries.length} adapters; at most ${BUNDLE_LIMITS.adapters} are allowed.`, { path, limit: BUNDLE_LIMITS.adapters });
  const out: Record<string, number> = {};
  for (const [k, v] of entries) out[id(k, `${path} key`)] = finite(v, `${path}.${k}`, 0, 1);
  const sum = Object.values(out).reduce((a, b) => a + b, 0);
  if (entries.length && Math.abs(sum - 1) > 1e-3) throw bad(path, `must sum to 1 (they sum to ${sum.toFixed(4)})`);
  return out;
}

/** Checks a bundle (its JSON text, or the parsed value) strictly; returns it in canonical form, or throws a typed error. */
export function parseBundle(input: string | unknown): AssistantBundle {
  let raw: unknown = input;
  if (typeof input === 'string') {
    const bytes = new TextEncoder().encode(input).byteLength;
    if (bytes > BUNDLE_LIMITS.bytes) throw new AppError('too-large', `The assistant bundle is ${bytes} bytes; at most ${BUNDLE_LIMITS.bytes} are allowed.`, { limit: BUNDLE_LIMITS.bytes });
    try {
      raw = JSON.parse(input);
    } catch {
      throw new AppError('bad-format', 'The assistant bundle is not valid JSON.');
    }
  }
  const b = object(raw, 'bundle', ['format', 'version', 'name', 'model', 'pool', 'blend', 'tau', 'centroid', 'routing', 'server', 'allowedOrigins']);
  if (b.format !== BUNDLE_FORMAT) throw bad('bundle.format', `must be "${BUNDLE_FORMAT}"`);
  if (b.version !== BUNDLE_VERSION) throw bad('bundle.version', `must be ${BUNDLE_VERSION} (this widget reads version ${BUNDLE_VERSION}; got ${JSON.stringify(b.version)})`);
  noSecrets(raw, 'bundle');

  const m = object(b.model, 'model', ['id', 'url']);
  const modelId = id(m.id, 'model.id');
  if (!knownModelIds().includes(modelId)) throw new AppError('unknown-model', `This widget doesn't know the model "${modelId}"; it runs ${knownModelIds().join(', ')}.`, { model: modelId });
  const model = { id: modelId, url: httpUrl(m.url, 'model.url') };
  modelTarget(model); // the URL fits the model (a GGUF model's URL names its file)

  const p = b.pool === null ? null : object(b.pool, 'pool', ['id', 'url']);
  const pool = p && { id: id(p.id, 'pool.id'), url: httpUrl(p.url, 'pool.url') };
  const bl = object(b.blend, 'blend', ['mode', 'weights']);
  if (bl.mode !== 'delta' && bl.mode !== 'factor') throw bad('blend.mode', 'must be "delta" or "factor"');
  const w = weights(bl.weights, 'blend.weights');
  if (!pool && Object.keys(w).length) throw bad('blend.weights', 'must be empty when there is no pool');
  if (pool && !Object.keys(w).length) throw bad('blend.weights', 'must name at least one adapter of the pool');

  const centroid = b.centroid === null ? null : list(b.centroid, 'centroid', BUNDLE_LIMITS.centroid).map((v, i) => finite(v, `centroid[${i}]`, -1e6, 1e6));
  if (centroid && centroid.length === 0) throw bad('centroid', 'must not be empty (use null for none)');

  const r = object(b.routing, 'routing', ['policy', 'thresholds']);
  if (!POLICIES.includes(r.policy as RoutingPolicy)) throw bad('routing.policy', `must be one of ${POLICIES.join(', ')}`);
  const t = object(r.thresholds, 'routing.thresholds', ['scope', 'mcConfidence', 'freeConfidence']);
  const s = b.server === null ? null : object(b.server, 'server', ['url']);
  const origins = list(b.allowedOrigins, 'allowedOrigins', BUNDLE_LIMITS.origins).map((o, i) => {
    try {
      return parseOrigin(text(o, `allowedOrigins[${i}]`, BUNDLE_LIMITS.url));
    } catch (e) {
      throw e instanceof AppError && e.code === 'bad-format' ? bad(`allowedOrigins[${i}]`, `is not an origin (${JSON.stringify(o)})`) : e;
    }
  });
  if (origins.length === 0) throw bad('allowedOrigins', 'must name at least one origin');

  return {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    name: text(b.name, 'name', BUNDLE_LIMITS.name).trim(),
    model,
    pool,
    blend: { mode: bl.mode, weights: w },
    tau: finite(b.tau, 'tau', 1e-6, 100),
    centroid,
    routing: {
      policy: r.policy as RoutingPolicy,
      thresholds: {
        scope: finite(t.scope, 'routing.thresholds.scope', -1, 1),
        mcConfidence: finite(t.mcConfidence, 'routing.thresholds.mcConfidence', 0, 1),
        freeConfidence: finite(t.freeConfidence, 'routing.thresholds.freeConfidence', -50, 0),
      },
    },
    server: s && { url: httpUrl(s.url, 'server.url') },
    allowedOrigins: [...new Set(origins)],
  };
}

/** What to download for a bundle's model: a folder, or one GGUF file checked against the catalog's pinned sha256. */
export function modelTarget(model: AssistantBundle['model']): { base: string; gguf?: string; sha256?: string } {
  const entry = CATALOG.find((e) => e.id === model.id);
  if (!entry?.gguf) {
    if (!model.url.endsWith('/')) throw bad('model.url', `must be the model's folder URL, ending in "/"`);
    return { base: model.url };
  }
  const at = model.url.lastIndexOf('/') + 1;
  if (model.url.slice(at) !== entry.gguf) throw bad('model.url', `must be the URL of ${entry.gguf}`);
  return { base: model.url.slice(0, at), gguf: entry.gguf, sha256: entry.sha256 };
}

export interface BundleInput {
  name: string;
  model: AssistantBundle['model'];
  pool: AssistantBundle['pool'];
  /** A saved assistant's blend as the app stores it. */
  customization: { weights: Record<string, number>; mode: 'delta' | 'factor'; tau: number; centroid?: number[] };
  routing: AssistantBundle['routing'];
  server: AssistantBundle['server'];
  allowedOrigins: string[];
}

/** A bundle from a saved assistant, checked as the widget will check it. Adapters at weight 0 are left out. */
export function makeBundle(x: BundleInput): AssistantBundle {
  const kept = Object.entries(x.customization.weights).filter(([, w]) => w > 0);
  const sum = kept.reduce((a, [, w]) => a + w, 0);
  return parseBundle({
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    name: x.name,
    model: x.model,
    pool: x.pool,
    blend: { mode: x.customization.mode, weights: Object.fromEntries(kept.map(([k, w]) => [k, w / sum])) },
    tau: x.customization.tau,
    centroid: x.customization.centroid?.length ? x.customization.centroid.map((v) => Math.round(v * 1e6) / 1e6) : null,
    routing: x.routing,
    server: x.server,
    allowedOrigins: x.allowedOrigins,
  });
}

/** Text for a single-quoted HTML attribute (so the bundle's JSON stays readable: its double quotes need no escape). */
const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/'/g, '&#39;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * The one line a site owner pastes: the loader, the bundle (inline, or the URL where the owner hosts it),
 * and the origins allowed to embed it.
 */
export function widgetSnippet(loaderUrl: string, bundle: AssistantBundle, hostedAt?: string): string {
  const assistant = hostedAt ?? JSON.stringify(bundle);
  return `<script async src='${escapeAttr(loaderUrl)}' data-assistant='${escapeAttr(assistant)}' data-origin-allow='${escapeAttr(bundle.allowedOrigins.join(' '))}'></script>`;
}

/**
 * The origins a bundle declares, each checked, even when the rest of it is invalid: the widget answers
 * such a host with the bundle's error. [] when it declares none it can read.
 */
export function declaredOrigins(input: string | unknown): string[] {
  let raw = input;
  try {
    if (typeof input === 'string') raw = input.length <= BUNDLE_LIMITS.bytes ? JSON.parse(input) : null;
  } catch {
    return [];
  }
  const list = (raw as { allowedOrigins?: unknown } | null)?.allowedOrigins;
  if (!Array.isArray(list) || list.length > BUNDLE_LIMITS.origins) return [];
  return list.flatMap((o) => {
    try {
      return typeof o === 'string' ? [parseOrigin(o)] : [];
    } catch {
      return [];
    }
  });
}
