import { createTusflow, type Tusflow } from '../wiring/create.ts';
import type { ServerEnv } from '../wiring/config.ts';
import { announce, failAtStart, listenError, scheduleCleanup, serverConfig, type RuntimeFeatures } from '../wiring/server.ts';

/** A runtime's HTTP server, as the shared lifecycle drives it. */
export interface Listening {
  /** Where it listens, e.g. http://0.0.0.0:1080 */
  origin: string;
  /** Takes no new connections; open ones go on. */
  stopAccepting(): void;
  /** Closes what is still open once the uploads have answered. */
  close(): Promise<void>;
}

export interface ServeOptions {
  vars: Record<string, string | undefined>;
  features?: RuntimeFeatures;
  /** Starts the runtime's HTTP server on the env's HOST and PORT, serving `tusflow.fetch`. */
  listen(tusflow: Tusflow, env: ServerEnv): Listening | Promise<Listening>;
  /** Calls `stop` on SIGINT and SIGTERM. */
  onSignals(stop: (signal: string) => void): void;
  exit(code: number): never;
}

/**
 * A server process, the same on every runtime: the environment read and every store checked, the
 * server started and announced, expired uploads removed on a schedule. Anything that stops it from
 * starting (a bad value, a backend that refuses, a port in use) exits 1 with one line on stderr
 * naming the setting. On SIGINT or SIGTERM, in-flight PATCHes commit what arrived and answer (10 s
 * at most), then it exits 0.
 */
export async function serve(o: ServeOptions): Promise<Tusflow> {
  const fail = (error: unknown) => failAtStart(error, o.exit);
  const { env, options, stores } = await serverConfig(o.vars, o.features).catch(fail);
  const tusflow = createTusflow(options);
  let server: Listening;
  try {
    server = await o.listen(tusflow, env);
  } catch (error) {
    return fail(listenError(error, env));
  }
  announce(env, { origin: server.origin, storage: stores.storage, state: stores.state }, options);
  const stopCleanup = scheduleCleanup(tusflow.engine, env.CLEANUP_INTERVAL_SECONDS);

  let stopping = false;
  o.onSignals(async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: finishing in-flight uploads`);
    stopCleanup();
    server.stopAccepting();
    await tusflow.shutdown(10_000);
    await server.close();
    o.exit(0);
  });
  return tusflow;
}
