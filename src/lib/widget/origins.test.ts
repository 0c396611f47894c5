import { describe, expect, it } from 'vitest';
import { AppError } from '../errors';
import { frameAncestors, parseOrigin, parseOriginList, staticHeadersFile } from './origins';

describe('origins', () => {
  it('spells an origin as event.origin does', () => {
    expect(parseOrigin('https://Shop.Example/')).toBe('https://shop.example');
    expect(parseOrigin('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(parseOrigin('https://shop.example:443')).toBe('https://shop.example');
  });

  it('refuses what is not exactly an origin, with a typed error', () => {
    for (const s of ['*', 'null', 'shop.example', 'https://shop.example/a', 'https://shop.example/?q', 'https://shop.example#x', 'file:///tmp', 'https://u:p@shop.example', "https://shop.example 'unsafe-inline'"]) {
      let e: unknown;
      try {
        parseOrigin(s);
      } catch (x) {
        e = x;
      }
      expect(e, s).toBeInstanceOf(AppError);
      expect((e as AppError).code).toBe('bad-format');
    }
  });

  it('reads a list separated by spaces, commas or lines, without duplicates', () => {
    expect(parseOriginList(' https://a.example,https://b.example\nhttps://a.example/ ')).toEqual(['https://a.example', 'https://b.example']);
    expect(parseOriginList('')).toEqual([]);
  });

  it("writes frame-ancestors with 'self' and each origin, and refuses to write a bad one into the header", () => {
    expect(frameAncestors([])).toBe("frame-ancestors 'self'");
    expect(frameAncestors(['https://a.example', 'http://127.0.0.1:9000'])).toBe("frame-ancestors 'self' https://a.example http://127.0.0.1:9000");
    expect(() => frameAncestors(['https://a.example; script-src *'])).toThrow(AppError);
    expect(staticHeadersFile(['https://a.example'])).toContain("/embed.html\n  Content-Security-Policy: frame-ancestors 'self' https://a.example\n");
  });
});
