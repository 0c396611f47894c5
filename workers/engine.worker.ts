// The engine's worker: the model runs here, off the page's main thread.
import { serve, type Endpoint } from '../src/lib/protocol/rpc';
import { engineHandlers } from '../src/lib/runtimes/engine-host';

serve(self as unknown as Endpoint, engineHandlers({
  fetch: fetch.bind(self),
  caches: self.caches,
  gpu: async ({ allowFallback }) => {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter || (adapter.info.isFallbackAdapter && !allowFallback)) return null;
    return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
  },
}));
