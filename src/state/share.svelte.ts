// "Share as widget" for a saved assistant: the owner names the origins allowed
// to embed it, where the pool is hosted and how it routes; this makes the
// assistant's bundle (checked as the widget will check it, after making sure
// the pool at that URL has every adapter the blend uses) and the one-line
// snippet to paste, with the header the app's server must send for those origins.
import { BUNDLED_MODEL_BASE } from './engine.svelte';
import { BUNDLED_POOL_BASE } from './pool.svelte';
import { AppError, messageOf } from '../lib/errors';
import type { Customization } from '../lib/pool/store';
import type { Settings } from '../lib/settings';
import { makeBundle, REFERENCE_MODEL_ID, widgetSnippet, type AssistantBundle } from '../lib/widget/bundle';
import { EMBED_ORIGINS_ENV, frameAncestors, parseOriginList } from '../lib/widget/origins';

export class ShareState {
  origins = $state('');
  poolUrl = $state('');
  policy = $state<Settings['policy']>('auto');
  serverUrl = $state('');
  bundle = $state<AssistantBundle | null>(null);
  snippet = $state('');
  /** The header line for the app's server, and how to set it. */
  header = $state('');
  error = $state<string | null>(null);
  busy = $state(false);

  constructor(
    readonly cz: Customization,
    private readonly settings: Settings,
    private readonly fetchFn: typeof fetch = fetch.bind(globalThis),
  ) {
    this.poolUrl = new URL(BUNDLED_POOL_BASE, location.href).toString();
    this.policy = settings.policy;
    this.serverUrl = settings.serverUrl;
  }

  async make(): Promise<boolean> {
    this.busy = true;
    this.error = null;
    this.snippet = '';
    try {
      const allowed = parseOriginList(this.origins);
      if (allowed.length === 0) throw new AppError('invalid-argument', 'Name at least one origin allowed to embed the assistant, e.g. https://shop.example.');
      const pool = { id: this.cz.pool, url: new URL(this.poolUrl.trim(), location.href).toString() };
      await this.checkPool(pool.url, Object.keys(this.cz.weights).filter((k) => this.cz.weights[k] > 0));
      const bundle = makeBundle({
        name: this.cz.name,
        model: { id: REFERENCE_MODEL_ID, url: new URL(BUNDLED_MODEL_BASE, location.href).toString() },
        pool,
        customization: this.cz,
        routing: { policy: this.policy, thresholds: { ...this.settings.thresholds } },
        server: this.serverUrl.trim() && this.policy !== 'local-only' ? { url: this.serverUrl.trim() } : null,
        allowedOrigins: allowed,
      });
      this.bundle = bundle;
      this.snippet = widgetSnippet(new URL('embed.js', location.href).toString(), bundle);
      this.header = `Content-Security-Policy: ${frameAncestors(allowed)} (start the app's server with ${EMBED_ORIGINS_ENV}="${allowed.join(' ')}")`;
      return true;
    } catch (e) {
      this.error = messageOf(e);
      return false;
    } finally {
      this.busy = false;
    }
  }

  /** A pool folder's pool.json must list every adapter the blend uses (a pool file is checked by the widget). */
  private async checkPool(url: string, need: string[]): Promise<void> {
    if (!url.endsWith('/')) return;
    let listed: string[];
    try {
      const res = await this.fetchFn(new URL('pool.json', url));
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      listed = ((await res.json()) as { adapters?: { id: string }[] }).adapters?.map((a) => a.id) ?? [];
    } catch (e) {
      throw new AppError('network', `The pool at ${url} could not be read (${messageOf(e)}).`);
    }
    const lacking = need.filter((id) => !listed.includes(id));
    if (lacking.length) {
      throw new AppError('missing-file', `The pool at ${url} lacks ${lacking.join(', ')}, which this assistant blends. Export the pool (Adapters page), host the file, and give its URL here.`);
    }
  }
}
