// The router's worker: decides per query whether the device or the server
// answers, off the page's main thread. It reaches the engine worker through a
// MessagePort the page hands over first (`{engine: port}`), and the server
// with fetch. Everything else is src/lib/router/host.ts.
import { serve, type Endpoint } from '../src/lib/protocol/rpc';
import { routerHandlers } from '../src/lib/router/host';
import { WorkerRuntime } from '../src/lib/runtimes/worker-runtime';

self.addEventListener('message', function connect(e: MessageEvent) {
  if (!(e.data?.engine instanceof MessagePort)) return;
  self.removeEventListener('message', connect);
  const port = e.data.engine as MessagePort;
  const device = new WorkerRuntime(port as Endpoint);
  port.start();
  serve(self as unknown as Endpoint, routerHandlers({ device, fetch: fetch.bind(self) }));
});
