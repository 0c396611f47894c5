// WebGPU in Node for tests and benchmarks, through the `webgpu` package (Dawn).
// The one place that knows how to get an adapter here: with Debian's chromium
// installed, Dawn's Vulkan backend finds SwiftShader through its ICD file; on a
// machine with a real GPU, Dawn finds that GPU's driver instead. Never imported
// by browser code.
import { existsSync } from 'node:fs';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export interface NodeGpu {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
}

let cached: Promise<NodeGpu> | null = null;

/**
 * Opens (once per process) a WebGPU device in Node. Set CRAYON_NODE_GPU=hardware
 * to skip the SwiftShader ICD and use whatever Vulkan driver the machine has.
 */
export function nodeGpu(): Promise<NodeGpu> {
  cached ??= open();
  return cached;
}

async function open(): Promise<NodeGpu> {
  if (process.env.CRAYON_NODE_GPU !== 'hardware' && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  const { create, globals } = await import('webgpu');
  // Dawn's node bindings expect the WebGPU enums (GPUBufferUsage, ...) as globals.
  Object.assign(globalThis, globals);
  const gpu = create([]);
  const adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      existsSync(SWIFTSHADER_ICD)
        ? 'The webgpu package found no adapter even with SwiftShader; check the Vulkan loader (libvulkan1).'
        : `No WebGPU adapter in Node: install Debian's chromium (apt-get install chromium) for its SwiftShader ICD at ${SWIFTSHADER_ICD}.`,
    );
  }
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  return { gpu, adapter, device };
}
