/** Deno entry: `deno task start` (npm run start:deno). Deno Deploy runs it with S3 + Upstash. */
import { createTusflow } from '../index.ts';
import { announce, exitOnConfigError, scheduleCleanup, serverConfig } from './server-stores.ts';

const { env, options, description } = await serverConfig(Deno.env.toObject(), { releaseChunks: true }).catch(exitOnConfigError(Deno.exit));
const tusflow = createTusflow(options);

const server = Deno.serve(
  {
    port: env.PORT,
    hostname: env.HOST,
    onListen: ({ hostname, port }) => announce(env, `http://${hostname}:${port}`, description),
  },
  (request, info) => tusflow.fetch(request, { remoteAddress: (info.remoteAddr as Deno.NetAddr).hostname }),
);

const stopCleanup = scheduleCleanup(tusflow.engine, env.CLEANUP_INTERVAL_SECONDS);

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: finishing in-flight uploads`);
  stopCleanup();
  await tusflow.shutdown(10_000); // PATCHes commit what arrived and answer
  await server.shutdown();
  Deno.exit(0);
}
Deno.addSignalListener('SIGINT', () => void stop('SIGINT'));
Deno.addSignalListener('SIGTERM', () => void stop('SIGTERM'));
