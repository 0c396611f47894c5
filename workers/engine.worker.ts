// The engine's worker: the model runs here, off the page's main thread.
import { serve, type Endpoint } from '../src/lib/protocol/rpc';
import { engineHandlers } from '../src/lib/runtimes/engine-host';

serve(self as unknown as Endpoint, engineHandlers({
  fetch: fetch.bind(self),
  caches: self.caches,
  gpu: async () => (await navigator.gpu?.requestAdapter())?.requestDevice() ?? null,
}));
