/**
 * Serves the Worker entry in workerd (Miniflare) on loopback, with this process's environment
 * variables as bindings: `npm run start:worker`. The same variables as `npm start`, PORT included.
 */
import type { Readable } from 'node:stream';
import { Miniflare } from 'miniflare';
import { workerEnv } from '../src/runtime/worker.ts';
import { failAtStart, listenError } from '../src/wiring/server.ts';

export async function bundleWorker(): Promise<string> {
  const result = await Bun.build({ entrypoints: [new URL('../src/runtime/worker.ts', import.meta.url).pathname], target: 'browser', format: 'esm' });
  if (!result.success) throw new AggregateError(result.logs, 'bundling the Worker failed');
  return result.outputs[0]!.text();
}

/** `onOutput`, when given, takes what workerd prints (the Worker's console), instead of this process's stdout and stderr. */
export async function startWorker(env: Record<string, string | undefined>, port: number, onOutput?: (text: string) => void) {
  const bindings = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const mf = new Miniflare({
    modules: true,
    script: await bundleWorker(),
    host: '127.0.0.1',
    port,
    cf: false,
    compatibilityDate: '2026-04-01',
    bindings,
    ...(onOutput && {
      handleRuntimeStdio: (stdout: Readable, stderr: Readable) => {
        for (const stream of [stdout, stderr]) stream.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
      },
    }),
  });
  return { url: await mf.ready, mf };
}

if (import.meta.main) {
  // Refused here, with one line, rather than served as a Worker that answers every request 503.
  try {
    workerEnv(Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string')));
  } catch (error) {
    await failAtStart(error, process.exit);
  }
  const port = Number(process.env.PORT ?? 1080);
  const where = { HOST: '127.0.0.1', PORT: port };
  // A port in use is one line too: tried here first, as workerd itself prints a fatal trace on it.
  try {
    Bun.listen({ hostname: where.HOST, port, socket: { data() {} } }).stop(true);
  } catch (error) {
    await failAtStart(listenError(error, where), process.exit);
  }
  const { url, mf } = await startWorker(process.env, port).catch((error: unknown) => {
    // Taken in between, or another failure: still one line.
    const inUse = (error as { code?: unknown } | null)?.code === 'ERR_ADDRESS_IN_USE';
    return failAtStart(listenError(inUse ? { code: 'EADDRINUSE' } : error, where), process.exit);
  });
  console.log(`tusflow listening on ${url.origin}${process.env.TUS_PATH ?? '/files'}/ (storage: Worker in workerd)`);
  const stop = async () => {
    await mf.dispose();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
