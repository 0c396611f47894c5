// Unit tests: plain TypeScript in Node (library code, server, world checks, benches' helpers).
// Browser end-to-end tests have their own config in e2e/vitest.config.ts.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'server/**/*.test.ts', 'training/**/*.test.ts', 'bench/**/*.test.ts', 'workers/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Dawn (webgpu package) and llama.cpp hold native handles; forks end cleanly.
    pool: 'forks',
  },
});
