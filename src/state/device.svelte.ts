// What this device can run: WebGPU or CPU, probed once at start.
import { probeWebGpu, type GpuProbe } from '../lib/gpu/probe';

export class DeviceState {
  probe = $state<GpuProbe | null>(null);
  backend = $derived(this.probe === null ? 'checking' : this.probe.available ? 'webgpu' : 'cpu');

  async init(): Promise<void> {
    this.probe = await probeWebGpu(typeof navigator !== 'undefined' ? navigator.gpu : undefined);
  }
}
