// The real model (SmolLM2-135M-Instruct, Q4_1 GGUF) in Chromium: our engine on
// CPU and on WebGPU (SwiftShader here) gives PyTorch's next-token logits, on
// the weights exactly dequantized from the same GGUF, within 1e-3 for the five
// chat prompts of `npm run real-model`'s reference.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { REAL_MODEL, realModelDir } from '../src/lib/engine/testing/real-model';
import { servedPath, type ParityReference } from '../bench/real-parity';
import { useBrowser } from './harness';

// SwiftShader runs the WebGPU backend at a few tokens/s at this size, and the five prompts are ~150 tokens
// in all (each prompt's logits come from a fresh prefill), on a 2-core machine shared with other jobs.
const TIMEOUT_MS = { cpu: 10 * 60_000, webgpu: 20 * 60_000 };

describe('the real model in Chromium', () => {
  const session = useBrowser();
  const dir = realModelDir(); // throws with the command that fetches it
  const ref = JSON.parse(readFileSync(`${dir}/reference/parity.json`, 'utf8')) as ParityReference;

  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`matches PyTorch's next-token logits on the GGUF's exactly dequantized weights within 1e-3 (${backend} backend)`, async () => {
      const page = await session().libPage();
      const out = await page.evaluate(
        async ([base, gguf, backend]) => (await load('/bench/browser/real-model.ts')).parity(base, gguf, backend),
        [servedPath(dir, process.cwd()), REAL_MODEL.gguf.file, backend] as const,
      );
      expect(out.backend).toBe(backend);
      expect(out.perPrompt).toHaveLength(ref.prompts.length);
      expect(ref.prompts.length).toBe(5);
      expect(Math.max(...out.perPrompt), `per prompt: ${out.perPrompt.map((x: number) => x.toExponential(2)).join(', ')}`).toBeLessThanOrEqual(1e-3);
    }, TIMEOUT_MS[backend]);
  }
});
