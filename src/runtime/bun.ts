/** Bun entry: `bun src/runtime/bun.ts` (npm start). */
import { createTusflow } from '../index.ts';
import { bunFeatures } from './bun-features.ts';
import { announce, exitOnConfigError, scheduleCleanup, serverConfig } from './server-stores.ts';

const { env, options, description } = await serverConfig(Bun.env, bunFeatures).catch(exitOnConfigError(process.exit));
const tusflow = createTusflow(options);

const server = Bun.serve({
  port: env.PORT,
  hostname: env.HOST,
  fetch: (request, bun) => tusflow.fetch(request, { remoteAddress: bun.requestIP(request)?.address }),
  // Uploads are long streams: no body-size cap here (MAX_SIZE is enforced by the engine), and
  // enough idle time for a slow client between chunks.
  maxRequestBodySize: Number.MAX_SAFE_INTEGER,
  idleTimeout: 120,
});
announce(env, server.url.href, description);

const stopCleanup = scheduleCleanup(tusflow.engine, env.CLEANUP_INTERVAL_SECONDS);

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: finishing in-flight uploads`);
  stopCleanup();
  void server.stop(); // no new connections; open ones go on
  await tusflow.shutdown(10_000); // PATCHes commit what arrived and answer
  await server.stop(true);
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
