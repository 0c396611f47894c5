// Per-test browser sessions with the guards every e2e test runs under:
// a request that leaves 127.0.0.1 fails the test (and is blocked), and so does
// any uncaught error in the page or in any of its workers.
import { afterAll, afterEach, beforeAll, beforeEach, expect, inject } from 'vitest';
import { mkdirSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './chromium';

declare global {
  /** On libPage(): imports a module from the Vite dev server (e.g. '/src/lib/errors.ts'). */
  // eslint-disable-next-line no-var
  var load: (path: string) => Promise<any>;
}

export const ARTIFACTS_DIR = 'e2e/artifacts';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Whether a URL stays on this machine (loopback, or no network at all). */
export function staysLocal(url: string): boolean {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.protocol === 'about:') return true;
  return LOOPBACK_HOSTS.has(u.hostname);
}

// Runs in every page before its scripts: reports uncaught errors of every
// dedicated worker the page starts (they don't reach 'pageerror').
const WORKER_GUARD = `(() => {
  const Native = globalThis.Worker;
  if (!Native) return;
  globalThis.Worker = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('error', (e) => console.error('[uncaught worker error]', e.message || String(e)));
    }
  };
})();`;

export interface Session {
  page: Page;
  context: BrowserContext;
  /** The built app's URL for a path, e.g. url('/') */
  url(path?: string): string;
  /**
   * Opens a blank page on the Vite dev server, where library modules can be
   * imported in the browser: `await page.evaluate(() => load('/src/lib/x.ts'))`
   * (`load` is declared below; a bare import() inside evaluate would be
   * rewritten by Vitest).
   */
  libPage(): Promise<Page>;
  /** Requests seen during the test, for tests that assert on traffic. */
  requests: string[];
  /** Returns and clears the guard violations so far: for tests of the guards themselves. */
  takeViolations(): string[];
}

/**
 * Call at the top of a describe(): returns a getter for the current test's
 * session. Each test gets a fresh context (fresh IndexedDB, caches, SW).
 */
export function useBrowser(): () => Session {
  let browser: Browser;
  let session: Session | null = null;
  let violations: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    violations = [];
    const base = inject('baseURL');
    const context = await browser.newContext({ serviceWorkers: 'allow', viewport: { width: 1280, height: 800 } });
    await context.addInitScript(WORKER_GUARD);
    const requests: string[] = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (staysLocal(url)) return route.continue();
      violations.push(`request left 127.0.0.1: ${url}`);
      return route.abort('blockedbyclient');
    });
    context.on('request', (r) => requests.push(r.url()));
    const page = await context.newPage();
    page.on('pageerror', (e) => violations.push(`uncaught page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && m.text().startsWith('[uncaught worker')) violations.push(m.text());
    });
    page.on('worker', (w) => {
      w.evaluate(() => {
        self.addEventListener('unhandledrejection', (e) => console.error('[uncaught worker rejection]', String(e.reason)));
      }).catch(() => {}); // the worker may already be gone
    });
    session = {
      page,
      context,
      requests,
      url: (path = '/') => new URL(path, base).toString(),
      libPage: async () => {
        await page.goto(new URL('/e2e/blank.html', inject('devURL')).toString());
        await page.waitForFunction(() => typeof load === 'function');
        return page;
      },
      takeViolations: () => violations.splice(0),
    };
  });

  afterEach(async () => {
    const s = session;
    session = null;
    await s?.context.close();
    expect(violations, 'guard violations during the test').toEqual([]);
  });

  return () => {
    if (!session) throw new Error('useBrowser(): no session outside a test');
    return session;
  };
}
