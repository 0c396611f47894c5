// `npm run server`: the reference Crayon server on 127.0.0.1:8787 with the
// reference world's server model and adapter pool.
//   --world DIR        a world folder (default world/)
//   --host, --port     where to listen (CRAYON_HOST, CRAYON_PORT too)
//   --cors-origin URL  an allowed browser origin (repeatable)
//   --token KEY        an accepted API key (repeatable; CRAYON_API_KEYS=a,b too)
import { parseArgs } from 'node:util';
import { createCrayonServer, DEFAULT_CONFIG } from './app';
import { loadPool, ServerModel } from './llama';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      world: { type: 'string', default: process.env.CRAYON_WORLD ?? 'world' },
      host: { type: 'string', default: process.env.CRAYON_HOST ?? '127.0.0.1' },
      port: { type: 'string', default: process.env.CRAYON_PORT ?? '8787' },
      'cors-origin': { type: 'string', multiple: true, default: [] },
      token: { type: 'string', multiple: true, default: [] },
    },
  });
  const world = values.world!;
  const model = await ServerModel.load(`${world}/server`, [loadPool(world)]);
  const tokens = [...values.token!, ...(process.env.CRAYON_API_KEYS ?? '').split(',').filter(Boolean)];
  const server = createCrayonServer(model, { ...DEFAULT_CONFIG, tokens, corsOrigins: [...DEFAULT_CONFIG.corsOrigins, ...values['cors-origin']!] });
  server.listen(Number(values.port), values.host, () => {
    console.log(`Crayon server on http://${values.host}:${values.port}/v1 (model ${model.name}, pool ${[...model.pools.keys()].join(', ')}${tokens.length ? ', API keys required' : ''})`);
  });
  const stop = () => server.close(() => model.dispose().then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
