// llama.cpp (node-llama-cpp, prebuilt CPU build, as the reference server loads
// it) as the peer for greedy decoding: given token ids as they are (no
// tokenizing, no BOS added), n greedy tokens each, with no repetition penalty
// and no stop at end-of-generation tokens. Each prompt gets a fresh context, so
// nothing of one prompt's evaluation is reused for the next.
import { getLlama, type Token } from 'node-llama-cpp';
import { packageVersion } from './package-version';

export interface LlamaCppGreedy {
  tokens: number[][];
  /** Per prompt, per position: llama.cpp's TOP most probable next tokens with their log-probabilities. */
  top: [token: number, logprob: number][][][];
  /** The decoded text of each token, by llama.cpp's own detokenizer. */
  detokenize(ids: number[]): string;
  versions: { node_llama_cpp: string; llama_cpp_release: string; build: string; threads: number };
  dispose(): Promise<void>;
}

const TOP = 5;

export async function llamaCppGreedy(ggufPath: string, prompts: number[][], n: number, threads = 1): Promise<LlamaCppGreedy> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: ggufPath });
  const tokens: number[][] = [];
  const top: [number, number][][][] = [];
  for (const ids of prompts) {
    const context = await model.createContext({ contextSize: ids.length + n + 8, sequences: 1, threads });
    const out: number[] = [];
    const tops: [number, number][][] = [];
    // temperature 0 is llama.cpp's greedy sampler (argmax); repeatPenalty left unset is no penalty.
    for await (const t of context.getSequence().evaluateWithMetadata(ids as Token[], { probabilities: true }, { temperature: 0, yieldEogToken: true })) {
      out.push(t.token);
      tops.push([...t.probabilities.entries()].slice(0, TOP).map(([tok, p]) => [tok, Math.log(p)]));
      if (out.length === n) break;
    }
    await context.dispose();
    if (out.length !== n) throw new Error(`llama.cpp stopped after ${out.length} of ${n} tokens.`);
    tokens.push(out);
    top.push(tops);
  }
  return {
    tokens,
    top,
    detokenize: (ids) => model.detokenize(ids as Token[], true),
    versions: { node_llama_cpp: packageVersion('node-llama-cpp'), llama_cpp_release: `${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}`, build: `${llama.buildType}, CPU`, threads },
    dispose: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}
