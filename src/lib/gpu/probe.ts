// Describes what WebGPU this environment offers, for the UI and for backend
// selection. The `gpu` object is passed in (navigator.gpu in a page or worker,
// the `webgpu` package's GPU in Node) so this runs anywhere.

export interface GpuProbe {
  available: boolean;
  /** Why WebGPU can't be used, in words a person understands; set when !available. */
  reason?: string;
  vendor?: string;
  architecture?: string;
  isFallbackAdapter?: boolean;
  features: string[];
  maxStorageBufferBindingSize?: number;
}

export async function probeWebGpu(gpu: GPU | undefined): Promise<GpuProbe> {
  if (!gpu) {
    return { available: false, features: [], reason: 'This browser does not offer WebGPU, so the model runs on the CPU (slower, but it works).' };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { available: false, features: [], reason: `WebGPU is present but no GPU adapter could be opened (${String(e)}); the model runs on the CPU.` };
  }
  if (!adapter) {
    return { available: false, features: [], reason: 'WebGPU is present but no GPU adapter is available (it may be disabled or blocklisted); the model runs on the CPU.' };
  }
  const info = adapter.info;
  return {
    available: true,
    vendor: info?.vendor,
    architecture: info?.architecture,
    // isFallbackAdapter moved from the adapter to its info in newer specs.
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    features: [...adapter.features].sort(),
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}
