// Builds the Svelte app, its workers and the service worker.
import { defineConfig, type Plugin } from 'vite';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { VitePWA } from 'vite-plugin-pwa';

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

export default defineConfig({
  plugins: [
    svelte(),
    bundledWorld(),
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
  build: { target: 'es2022', sourcemap: true },
  server: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
  preview: { host: '127.0.0.1', headers: ISOLATION_HEADERS },
});
