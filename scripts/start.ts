// `npm start`: serves the built app (dist/, built by `prestart`) on
// 127.0.0.1:4173 and starts the reference Crayon server on 127.0.0.1:8787,
// then keeps both running until Ctrl-C. Ports: APP_PORT, SERVER_PORT.
import { spawn, type ChildProcess } from 'node:child_process';
import { preview } from 'vite';

const appPort = Number(process.env.APP_PORT ?? 4173);
const serverPort = Number(process.env.SERVER_PORT ?? 8787);
const appOrigin = `http://127.0.0.1:${appPort}`;

const app = await preview({ preview: { host: '127.0.0.1', port: appPort, strictPort: true }, logLevel: 'warn' });
console.log(`Crayon app:       ${appOrigin}/`);
// The widget's embed.html may be framed by these sites (vite.config.ts sends them in frame-ancestors).
console.log(`Widget embeds:    ${process.env.CRAYON_EMBED_ORIGINS?.trim() || 'this app only (set CRAYON_EMBED_ORIGINS="https://shop.example ..." to allow other sites)'}`);

const server: ChildProcess = spawn('npx', ['tsx', 'server/main.ts', '--host', '127.0.0.1', '--port', String(serverPort), '--cors-origin', appOrigin], { stdio: 'inherit' });
server.on('exit', (code, signal) => {
  if (signal !== 'SIGTERM') console.error(`The reference server stopped (${signal ?? `exit code ${code}`}); the app keeps working on the device.`);
});
console.log(`Reference server: http://127.0.0.1:${serverPort}/v1 (OpenAI-compatible)`);

const stop = () => {
  server.kill('SIGTERM');
  app.httpServer.close(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
