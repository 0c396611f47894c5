// The engine's worker: the model runs here, off the page's main thread. The
// page talks to it directly; the router worker gets its own MessagePort to it
// (a `{connect: port}` message), served by the same handlers and engine.
import { serve, type Endpoint } from '../src/lib/protocol/rpc';
import { engineHandlers } from '../src/lib/runtimes/engine-host';

const handlers = engineHandlers({
  fetch: fetch.bind(self),
  caches: self.caches,
  gpu: async ({ allowFallback }) => {
    const adapter = await navigator.gpu?.requestAdapter();
    if (!adapter || (adapter.info.isFallbackAdapter && !allowFallback)) return null;
    return adapter.requestDevice({ requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize } });
  },
});
serve(self as unknown as Endpoint, handlers);
self.addEventListener('message', (e: MessageEvent) => {
  if (e.data?.connect instanceof MessagePort) {
    serve(e.data.connect as Endpoint, handlers);
    e.data.connect.start();
  }
});
