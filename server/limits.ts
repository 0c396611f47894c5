// The server's bounded tables: per-client rate-limit buckets and the
// wrong-key throttle, both expiring and capped in size (a table keyed by what
// clients send must never grow with what they send), and the constant-time
// check of an API key.
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Token buckets by client key. A bucket that has refilled completely is the
 * same as no bucket, so it is dropped; beyond `maxEntries` the least recently
 * used bucket goes (Map order is use order).
 */
export class Buckets {
  private readonly b = new Map<string, { tokens: number; at: number }>();
  private sweptAt = 0;
  constructor(
    private readonly cfg: { capacity: number; refillPerSec: number },
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token; false when the bucket is empty. */
  take(key: string): boolean {
    return this.takeOr(key) === 0;
  }

  /** Takes one token; returns 0, or the seconds until one is available. */
  takeOr(key: string): number {
    const now = this.now();
    this.sweep(now);
    const s = this.b.get(key) ?? { tokens: this.cfg.capacity, at: now };
    s.tokens = Math.min(this.cfg.capacity, s.tokens + ((now - s.at) / 1000) * this.cfg.refillPerSec);
    s.at = now;
    this.b.delete(key);
    this.b.set(key, s);
    while (this.b.size > this.maxEntries) this.b.delete(this.b.keys().next().value!);
    if (s.tokens < 1) return Math.max(1, Math.ceil((1 - s.tokens) / Math.max(this.cfg.refillPerSec, 1e-9)));
    s.tokens -= 1;
    return 0;
  }

  /** Adds a cost without refusing (for the wrong-key throttle: every failure counts). */
  charge(key: string): void {
    this.takeOr(key);
  }

  /** Seconds until `key` may try again; 0 when it may now (takes nothing). */
  blockedFor(key: string): number {
    const s = this.b.get(key);
    if (!s) return 0;
    const tokens = Math.min(this.cfg.capacity, s.tokens + ((this.now() - s.at) / 1000) * this.cfg.refillPerSec);
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / Math.max(this.cfg.refillPerSec, 1e-9)));
  }

  get size(): number {
    return this.b.size;
  }

  /** Drops every bucket that has refilled completely, at most once a second. */
  private sweep(now: number): void {
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    const full = (this.cfg.capacity / Math.max(this.cfg.refillPerSec, 1e-9)) * 1000;
    for (const [k, s] of this.b) if (now - s.at >= full) this.b.delete(k);
  }
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Which configured key `token` is, compared in constant time: both sides are
 * hashed to 32 bytes (so lengths leak nothing) and every key is compared.
 */
export function matchKey(keys: Buffer[], token: string): number {
  const t = digest(token);
  let found = -1;
  for (let i = 0; i < keys.length; i++) if (timingSafeEqual(keys[i], t) && found < 0) found = i;
  return found;
}

export const hashKeys = (keys: string[]): Buffer[] => keys.map(digest);
