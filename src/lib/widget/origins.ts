// The origins allowed to embed the widget, parsed strictly (scheme://host[:port]
// and nothing else), and the header the app's server sends with embed.html so
// the browser itself refuses to frame it anywhere else:
// `Content-Security-Policy: frame-ancestors 'self' <origins>`. The server reads
// the origins from CRAYON_EMBED_ORIGINS (vite.config.ts); a static host gets
// the same header from dist/_headers, written by the build.
// Extensions spelled out: vite.config.ts imports this file, and Vite's native config loader needs them.
import { AppError } from '../errors.ts';

/** The environment variable that declares the origins allowed to embed the widget (space or comma separated). */
export const EMBED_ORIGINS_ENV = 'CRAYON_EMBED_ORIGINS';

/** The widget's page, the one the header applies to. */
export const EMBED_PAGE = '/embed.html';

/** An origin exactly as `event.origin` spells it (`https://shop.example`, `http://127.0.0.1:8080`), or a typed error. */
export function parseOrigin(text: string): string {
  const s = text.trim();
  const bad = (why: string) => new AppError('bad-format', `"${s}" is not an origin (${why}); write it as https://shop.example or http://127.0.0.1:8080.`, { origin: s });
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad('only http and https pages can embed it');
  if (u.username || u.password) throw bad('it carries a user name or password');
  // Nothing after the host: a path, query or fragment would never match event.origin.
  if (u.pathname !== '/' || u.search || u.hash || /[?#]/.test(s)) throw bad('it has a path, query or fragment');
  return u.origin;
}

/** A list of origins separated by spaces, commas or new lines; duplicates dropped, order kept. */
export function parseOriginList(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const o = parseOrigin(part);
    if (!out.includes(o)) out.push(o);
  }
  return out;
}

/** The Content-Security-Policy value for embed.html: the app itself, and the declared origins. */
export function frameAncestors(origins: readonly string[]): string {
  return ["frame-ancestors 'self'", ...origins.map(parseOrigin)].join(' ');
}

/** The same header as a static host's `_headers` file (Netlify, Cloudflare Pages) states it. */
export function staticHeadersFile(origins: readonly string[]): string {
  return `# Written by the build from ${EMBED_ORIGINS_ENV}: who may embed the widget.\n${EMBED_PAGE}\n  Content-Security-Policy: ${frameAncestors(origins)}\n`;
}
