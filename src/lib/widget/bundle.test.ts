import { describe, expect, it } from 'vitest';
import { REAL_MODEL_ID, realModelEntry } from '../models/catalog';
import { BUNDLE_LIMITS, declaredOrigins, makeBundle, modelTarget, parseBundle, widgetSnippet, type AssistantBundle } from './bundle';
import { thrown } from '../testing/thrown';

const valid = (): AssistantBundle => ({
  format: 'crayon-assistant',
  version: 1,
  name: 'Capitals helper',
  model: { id: 'reference', url: 'https://app.example/world/device/' },
  pool: { id: 'reference-device-pool', url: 'https://app.example/world/device-pool/' },
  blend: { mode: 'delta', weights: { 'cluster-0': 0.75, 'cluster-3': 0.25 } },
  tau: 0.02,
  centroid: [0.1, -0.2, 0.3],
  routing: { policy: 'auto', thresholds: { scope: 0.6, mcConfidence: 0.5, freeConfidence: -2 } },
  server: { url: 'https://server.example/v1' },
  allowedOrigins: ['https://shop.example', 'http://127.0.0.1:8080'],
});


const withField = (path: (b: any) => void) => {
  const b: any = valid();
  path(b);
  return b;
};

describe('parseBundle', () => {
  it('accepts a valid bundle, as text or as a value, and returns it unchanged', () => {
    expect(parseBundle(JSON.stringify(valid()))).toEqual(valid());
    expect(parseBundle(valid())).toEqual(valid());
  });

  it('refuses text that is not JSON, and a value that is not a bundle, as bad-format', () => {
    expect(thrown(() => parseBundle('{"format": "crayon-assistant",')).code).toBe('bad-format');
    expect(thrown(() => parseBundle('[1, 2]')).code).toBe('bad-format');
    expect(thrown(() => parseBundle(withField((b) => (b.format = 'something-else')))).message).toMatch(/format/);
  });

  it('refuses another version, naming the one it reads', () => {
    const e = thrown(() => parseBundle(withField((b) => (b.version = 2))));
    expect(e.code).toBe('bad-format');
    expect(e.message).toMatch(/version 1; got 2/);
  });

  it('refuses a model this app does not know, with its own code', () => {
    const e = thrown(() => parseBundle(withField((b) => (b.model.id = 'gpt-9'))));
    expect(e.code).toBe('unknown-model');
    expect(e.message).toMatch(/"gpt-9"/);
    expect(e.details).toEqual({ model: 'gpt-9' });
  });

  it('refuses a field it does not know, at the top and inside', () => {
    expect(thrown(() => parseBundle(withField((b) => (b.extra = 1)))).details).toEqual({ path: 'bundle.extra' });
    expect(thrown(() => parseBundle(withField((b) => (b.model.sha = 'x')))).details).toEqual({ path: 'model.sha' });
  });

  it('refuses anything that looks like an API key, wherever it is', () => {
    const e = thrown(() => parseBundle(withField((b) => (b.server.apiKey = 'sk-123'))));
    expect(e.code).toBe('bad-format');
    expect(e.message).toMatch(/never carries an API key/);
    expect(thrown(() => parseBundle(withField((b) => (b.routing.token = 'x')))).message).toMatch(/credential/);
  });

  it('refuses weights that are not finite, negative, or do not sum to 1', () => {
    expect(thrown(() => parseBundle(withField((b) => (b.blend.weights['cluster-0'] = NaN)))).message).toMatch(/finite/);
    // JSON can't hold NaN: text with a huge number parses to Infinity.
    const inf = JSON.stringify(valid()).replace('0.75', '1e999');
    expect(thrown(() => parseBundle(inf)).details).toEqual({ path: 'blend.weights.cluster-0' });
    expect(thrown(() => parseBundle(withField((b) => (b.blend.weights['cluster-0'] = -0.25)))).message).toMatch(/between 0 and 1/);
    expect(thrown(() => parseBundle(withField((b) => (b.blend.weights['cluster-0'] = 0.5)))).message).toMatch(/sum to 1/);
  });

  it('refuses a centroid, τ or threshold that is not a finite number in range', () => {
    expect(thrown(() => parseBundle(withField((b) => (b.centroid[1] = 'x')))).details).toEqual({ path: 'centroid[1]' });
    expect(thrown(() => parseBundle(withField((b) => (b.tau = 0)))).details).toEqual({ path: 'tau' });
    expect(thrown(() => parseBundle(withField((b) => (b.routing.thresholds.scope = 2)))).details).toEqual({ path: 'routing.thresholds.scope' });
    expect(thrown(() => parseBundle(withField((b) => (b.routing.policy = 'always')))).details).toEqual({ path: 'routing.policy' });
  });

  it('refuses what is over its size limits as too-large', () => {
    const big = JSON.stringify({ ...valid(), name: 'x'.repeat(BUNDLE_LIMITS.bytes) });
    expect(thrown(() => parseBundle(big)).code).toBe('too-large');
    expect(thrown(() => parseBundle(withField((b) => (b.name = 'n'.repeat(BUNDLE_LIMITS.name + 1))))).code).toBe('too-large');
    expect(thrown(() => parseBundle(withField((b) => (b.centroid = new Array(BUNDLE_LIMITS.centroid + 1).fill(0))))).code).toBe('too-large');
    const many = Object.fromEntries(Array.from({ length: BUNDLE_LIMITS.adapters + 1 }, (_, i) => [`a${i}`, 1 / (BUNDLE_LIMITS.adapters + 1)]));
    expect(thrown(() => parseBundle(withField((b) => (b.blend.weights = many)))).code).toBe('too-large');
  });

  it('refuses origins that are not exact origins, and a bundle that allows none', () => {
    for (const o of ['*', 'null', 'https://shop.example/page', 'https://shop.example?x=1', 'ftp://shop.example', 'shop.example']) {
      const e = thrown(() => parseBundle(withField((b) => (b.allowedOrigins = [o]))));
      expect(e.code, o).toBe('bad-format');
      expect(e.details).toEqual({ path: 'allowedOrigins[0]' });
    }
    expect(thrown(() => parseBundle(withField((b) => (b.allowedOrigins = [])))).message).toMatch(/at least one origin/);
  });

  it('refuses URLs that are not absolute http(s), or carry a password', () => {
    expect(thrown(() => parseBundle(withField((b) => (b.model.url = '/world/device/')))).details).toEqual({ path: 'model.url' });
    expect(thrown(() => parseBundle(withField((b) => (b.server.url = 'https://u:p@server.example/v1')))).details).toEqual({ path: 'server.url' });
    expect(thrown(() => parseBundle(withField((b) => (b.pool.url = 'javascript:alert(1)')))).details).toEqual({ path: 'pool.url' });
  });

  it('keeps weights and pool consistent: none without a pool, some with one', () => {
    expect(thrown(() => parseBundle(withField((b) => (b.pool = null)))).details).toEqual({ path: 'blend.weights' });
    expect(parseBundle(withField((b) => ((b.pool = null), (b.blend.weights = {})))).pool).toBeNull();
    expect(thrown(() => parseBundle(withField((b) => (b.blend.weights = {})))).details).toEqual({ path: 'blend.weights' });
  });
});

describe('modelTarget', () => {
  it("downloads a folder model from its folder, and the real model's GGUF checked against the pinned sha256", () => {
    expect(modelTarget({ id: 'reference', url: 'https://app.example/world/device/' })).toEqual({ base: 'https://app.example/world/device/' });
    const real = realModelEntry('https://mirror.example');
    expect(modelTarget({ id: REAL_MODEL_ID, url: `${real.base}${real.gguf}` })).toEqual({ base: real.base, gguf: real.gguf, sha256: real.sha256 });
  });

  it("refuses a GGUF model's URL that names another file, and a folder URL without its slash", () => {
    expect(thrown(() => parseBundle(withField((b) => (b.model = { id: REAL_MODEL_ID, url: 'https://mirror.example/other.gguf' })))).details).toEqual({ path: 'model.url' });
    expect(thrown(() => parseBundle(withField((b) => (b.model.url = 'https://app.example/world/device')))).details).toEqual({ path: 'model.url' });
  });
});

describe('makeBundle and the snippet', () => {
  const input = {
    name: 'Capitals helper',
    model: valid().model,
    pool: valid().pool,
    customization: { weights: { 'cluster-0': 0.6, 'cluster-1': 0, 'cluster-3': 0.2 }, mode: 'factor' as const, tau: 0.05, centroid: [0.123456789, 1] },
    routing: valid().routing,
    server: null,
    allowedOrigins: ['https://shop.example/'],
  };

  it('leaves out adapters at weight 0, renormalizes, and rounds the centroid', () => {
    const b = makeBundle(input);
    expect(b.blend.mode).toBe('factor');
    expect(Object.keys(b.blend.weights)).toEqual(['cluster-0', 'cluster-3']);
    expect(b.blend.weights['cluster-0']).toBeCloseTo(0.75, 12);
    expect(b.blend.weights['cluster-3']).toBeCloseTo(0.25, 12);
    expect(b.centroid).toEqual([0.123457, 1]);
    expect(b.allowedOrigins).toEqual(['https://shop.example']);
    expect(b.server).toBeNull();
  });

  it('throws the same typed error the widget would, for an origin that is not one', () => {
    expect(thrown(() => makeBundle({ ...input, allowedOrigins: ['shop.example'] })).code).toBe('bad-format');
  });

  it('writes one script line whose attributes give back the bundle exactly, quotes and all', () => {
    const b = makeBundle({ ...input, name: `Bob's "best" <helper> & co` });
    const line = widgetSnippet('https://app.example/embed.js', b);
    expect(line.split('\n')).toHaveLength(1);
    expect(line).not.toMatch(/<helper>/);
    const attr = (name: string) => {
      const m = new RegExp(`${name}='([^']*)'`).exec(line)!;
      return m[1].replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    };
    expect(parseBundle(attr('data-assistant'))).toEqual(b);
    expect(attr('data-origin-allow')).toBe('https://shop.example');
    expect(attr('src')).toBe('https://app.example/embed.js');
    expect(widgetSnippet('https://app.example/embed.js', b, 'https://shop.example/bot.json')).toContain("data-assistant='https://shop.example/bot.json'");
  });
});

describe('declaredOrigins', () => {
  it('reads the valid origins of an otherwise invalid bundle, and none from text that is not JSON', () => {
    expect(declaredOrigins(JSON.stringify(withField((b) => ((b.model.id = 'gpt-9'), b.allowedOrigins.push('*')))))).toEqual(['https://shop.example', 'http://127.0.0.1:8080']);
    expect(declaredOrigins('{not json')).toEqual([]);
    expect(declaredOrigins({ allowedOrigins: 'https://shop.example' })).toEqual([]);
  });
});
