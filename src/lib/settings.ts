// The user's settings: routing policy and thresholds, and the server to send
// escalated queries to. Kept on the device; the API key is sent only to that
// server. Loading tolerates anything stored by an older or broken version.
import calibration from './calibration.json';
import type { RoutingPolicy, Thresholds } from './router/policy';
import type { SendHistory } from './router/protocol';

export interface Settings {
  policy: RoutingPolicy;
  thresholds: Thresholds;
  /** Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8787/v1; empty = no server. */
  serverUrl: string;
  apiKey: string;
  /** Model name to ask the server for; empty = the server's first model. */
  serverModel: string;
  /** Earlier turns an escalated question takes along: none (default), or those not asked under "This device only". */
  sendHistory: SendHistory;
}

/** Routing thresholds calibrated on the reference world's validation data (npm run bench:route, then bench:report). */
const calibrated = (calibration as { routing?: { thresholds?: Thresholds } }).routing?.thresholds;

/** Defaults: the calibrated thresholds when the calibration file has them. */
export const DEFAULT_SETTINGS: Settings = {
  policy: 'auto',
  thresholds: calibrated ?? { scope: 0.5, mcConfidence: 0.5, freeConfidence: -2 },
  serverUrl: 'http://127.0.0.1:8787/v1',
  apiKey: '',
  serverModel: '',
  sendHistory: 'none',
};

const POLICIES: RoutingPolicy[] = ['local-only', 'server-only', 'auto'];

function num(x: unknown, fallback: number, min: number, max: number): number {
  return typeof x === 'number' && Number.isFinite(x) && x >= min && x <= max ? x : fallback;
}

function str(x: unknown, fallback: string): string {
  return typeof x === 'string' ? x : fallback;
}

/** Settings from whatever was stored: unknown or invalid fields fall back to defaults, field by field. */
export function normalizeSettings(stored: unknown, defaults: Settings = DEFAULT_SETTINGS): Settings {
  const s = (stored && typeof stored === 'object' ? stored : {}) as Record<string, unknown>;
  const t = (s.thresholds && typeof s.thresholds === 'object' ? s.thresholds : {}) as Record<string, unknown>;
  return {
    policy: POLICIES.includes(s.policy as RoutingPolicy) ? (s.policy as RoutingPolicy) : defaults.policy,
    thresholds: {
      scope: num(t.scope, defaults.thresholds.scope, -1, 1),
      mcConfidence: num(t.mcConfidence, defaults.thresholds.mcConfidence, 0, 1),
      freeConfidence: num(t.freeConfidence, defaults.thresholds.freeConfidence, -50, 0),
    },
    serverUrl: str(s.serverUrl, defaults.serverUrl).trim(),
    apiKey: str(s.apiKey, defaults.apiKey),
    serverModel: str(s.serverModel, defaults.serverModel).trim(),
    sendHistory: s.sendHistory === 'shared' ? 'shared' : 'none',
  };
}

/** A server URL the user typed, checked: http(s) only; returns a message for the form, or null when fine. */
export function serverUrlProblem(url: string): string | null {
  if (url === '') return null;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'This is not a URL. Example: http://127.0.0.1:8787/v1';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'Only http:// and https:// servers are supported.';
  if (u.username || u.password) return 'Put the API key in its own field, not in the URL.';
  return null;
}
