// Builds the Svelte app, its workers and the service worker.
import { build, defineConfig, type Plugin, type PreviewServer, type ViteDevServer } from 'vite';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';
import { EMBED_ORIGINS_ENV, EMBED_PAGE, frameAncestors, parseOriginList, staticHeadersFile } from './src/lib/widget/origins.ts';

// Cross-origin isolation: SharedArrayBuffer and multithreaded WASM need it.
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

// What of the reference world the app ships (the device model, its tokenizer
// and its adapter pool): ready offline on the first visit. The server model,
// oracles and fixtures stay out of the app.
const BUNDLED_WORLD = ['device', 'device-pool'];
const BUNDLED_SKIP = /\.gguf$/; // llama.cpp's copy is for benchmarks, not the app

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)]));
}

/** Emits the bundled world into the build as assets (so the service worker precaches them). */
function bundledWorld(): Plugin {
  return {
    name: 'crayon-bundled-world',
    apply: 'build',
    generateBundle() {
      const world = process.env.CRAYON_WORLD ?? 'world'; // tests may point at a freshly built world-smoke/
      for (const part of BUNDLED_WORLD) {
        for (const f of files(join(world, part))) {
          if (!BUNDLED_SKIP.test(f)) this.emitFile({ type: 'asset', fileName: `world/${relative(world, f)}`, source: readFileSync(f) });
        }
      }
    },
  };
}

/** The origins declared to embed the widget (CRAYON_EMBED_ORIGINS); a malformed one stops the server or build with its error. */
const embedOrigins = () => parseOriginList(process.env[EMBED_ORIGINS_ENV] ?? '');

/**
 * The embeddable widget (issue 19): embed.js, the loader, is built alone as one small classic script at the
 * root of dist/ (a page includes it with a plain <script async>, so it can't import chunks); embed.html is the
 * second page (see build.rolldownOptions.input). The preview server (npm start, e2e) and the dev server send
 * embed.html with `Content-Security-Policy: frame-ancestors 'self' <CRAYON_EMBED_ORIGINS>`, and the build
 * writes the same header into dist/_headers for static hosts.
 */
function embeddableWidget(): Plugin[] {
  const headers = (server: ViteDevServer | PreviewServer) => {
    const csp = frameAncestors(embedOrigins());
    server.middlewares.use((req, res, next) => {
      const path = (req.url ?? '').split(/[?#]/)[0];
      if (path === EMBED_PAGE) res.setHeader('Content-Security-Policy', csp);
      // Other sites include the loader: let a host page with COEP load it too.
      if (path === '/embed.js') res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
      next();
    });
  };
  return [
    { name: 'crayon-widget-headers', configureServer: headers, configurePreviewServer: headers },
    {
      name: 'crayon-widget-loader',
      apply: 'build',
      async generateBundle() {
        const out = await build({
          configFile: false,
          logLevel: 'warn',
          build: { write: false, target: 'es2020', minify: true, lib: { entry: 'src/embed/loader.ts', formats: ['iife'], name: 'crayonEmbed', fileName: () => 'embed.js' } },
        });
        const chunk = (Array.isArray(out) ? out : [out]).flatMap((o) => ('output' in o ? o.output : [])).find((c) => c.type === 'chunk');
        if (!chunk || chunk.type !== 'chunk') throw new Error('the widget loader (src/embed/loader.ts) did not build');
        this.emitFile({ type: 'asset', fileName: 'embed.js', source: chunk.code });
        this.emitFile({ type: 'asset', fileName: '_headers', source: staticHeadersFile(embedOrigins()) });
      },
    },
  ];
}

export default defineConfig({
  plugins: [
    svelte(),
    bundledWorld(),
    ...embeddableWidget(),
    VitePWA({
      registerType: 'prompt',
      injectRegister: false,
      manifest: {
        name: 'Crayon — your assistant, on your device',
        short_name: 'Crayon',
        description: 'Customize a small language model from a few examples, in your browser, offline.',
        theme_color: '#1f2937',
        background_color: '#ffffff',
        display: 'standalone',
        start_url: '.',
        icons: [
          { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // The bundled world (model weights ~3.5 MB, adapters ~0.3 MB each) is
        // precached so the app works offline from the first visit: the
        // default 2 MiB per-file limit is raised deliberately for it.
        globPatterns: ['**/*.{js,css,html,svg,png,webmanifest}', 'world/**/*.{json,safetensors}'],
        maximumFileSizeToCacheInBytes: 16 * 2 ** 20,
        // Downloaded catalog models live in their own cache, never in the precache.
        navigateFallbackDenylist: [/^\/world\//],
      },
    }),
  ],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true, rolldownOptions: { input: { main: 'index.html', embed: 'embed.html' } } },
  server: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
  preview: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
});
