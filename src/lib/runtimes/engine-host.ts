// The worker side of the engine: one CrayonEngine, driven by EngineProtocol
// messages. The worker entry only wires this to its global scope.
import { AppError } from '../errors';
import { CrayonEngine } from '../engine/engine';
import { loadCheckpoint } from '../engine/loader';
import { cacheSource, filesSource, urlSource, type FileSource } from '../engine/sources';
import type { Handlers } from '../protocol/rpc';
import type { CheckpointSource, EngineProtocol } from './engine-protocol';

export interface HostIo {
  fetch: typeof fetch;
  caches?: CacheStorage;
  /**
   * Opens a WebGPU device, or null when there is none (then the CPU runs the
   * model). With allowFallback false, a software adapter (SwiftShader) counts
   * as none: it emulates a GPU on the CPU, slower than the CPU backend itself.
   */
  gpu?: (opts: { allowFallback: boolean }) => Promise<GPUDevice | null>;
}

export function engineHandlers(io: HostIo): Handlers<EngineProtocol> {
  let engine: CrayonEngine | null = null;
  const need = (): CrayonEngine => {
    if (!engine) throw new AppError('not-loaded', 'No model is loaded yet.');
    return engine;
  };
  const source = async (s: CheckpointSource): Promise<FileSource> => {
    if (s.kind === 'url') return urlSource(s.base, io.fetch);
    if (s.kind === 'files') return filesSource(s.files);
    if (!io.caches) throw new AppError('backend-unavailable', 'Cache Storage is not available here.');
    return cacheSource(await io.caches.open(s.cacheName), s.base);
  };

  return {
    load: async ({ source: s, contextLength, backend, gpuWeights, gpuMatvec }, { signal, progress }) => {
      const gguf = s.kind === 'files' ? s.files.find((f) => f.name.toLowerCase().endsWith('.gguf'))?.name : s.gguf;
      const ckpt = await loadCheckpoint(await source(s), { signal, onProgress: progress, gguf });
      await engine?.unload();
      engine = null;
      const gpu = backend === 'cpu' ? null : ((await io.gpu?.({ allowFallback: backend === 'webgpu' }).catch(() => null)) ?? null);
      engine = await CrayonEngine.create(ckpt, { contextLength, backend: backend ?? 'auto', gpu: gpu ?? undefined, gpuWeights, gpuMatvec });
      return engine.info();
    },
    info: async () => need().info(),
    generate: async (req, { signal, progress }) => need().generate(req, { signal, onToken: (text, token, logprob) => progress({ text, token, logprob }) }),
    score: async ({ prompt, continuations, blend }, { signal }) => need().score(prompt, continuations, { blend, signal }),
    embed: async ({ texts }) => need().embed(texts),
    renderChat: async ({ messages, addGenerationPrompt }) => need().renderChat(messages, addGenerationPrompt),
    loadAdapter: async ({ id, config, weights }) => {
      await need().loadAdapter(id, { config, weights });
      return null;
    },
    removeAdapter: async ({ id }) => {
      await need().removeAdapter(id);
      return null;
    },
    setBlend: async ({ blend }) => {
      await need().setBlend(blend);
      return null;
    },
    logits: async ({ ids }) => need().logitsFor(ids),
    embedIds: async ({ ids }) => need().embedIds(ids),
    unload: async () => {
      await engine?.unload();
      engine = null;
      return null;
    },
  };
}
