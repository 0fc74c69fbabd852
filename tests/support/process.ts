import type { Subprocess } from 'bun';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Env } from './s3.ts';
import { REDIS_URL } from './state-stores.ts';

export interface ServerProcess {
  endpoint: string;
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Everything the process printed so far. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Collects what a process writes to stdout and stderr as it comes; `done` when both pipes end. */
export function captureOutput(proc: Subprocess<'ignore', 'pipe', 'pipe'>): { text(): string; done: Promise<unknown> } {
  let text = '';
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  return { text: () => text, done: Promise.all([drain(proc.stdout), drain(proc.stderr)]) };
}

/**
 * SIGTERM, then SIGKILL if the process has not exited within `graceMs`: it gets to stop its own
 * children (nginx's workers, Miniflare's workerd), which outlive a parent that is SIGKILLed.
 */
export async function terminate(proc: Subprocess, graceMs = 5_000): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  if ((await Promise.race([proc.exited, Bun.sleep(graceMs).then(() => 'late' as const)])) === 'late') proc.kill('SIGKILL');
  await proc.exited;
}

const ROOT = new URL('../..', import.meta.url).pathname;

/** Runs a server entry as its own process (so it can be killed and restarted for real). */
export async function spawnServer(env: Record<string, string>, command: string[] = [process.execPath, 'src/runtime/bun.ts']): Promise<ServerProcess> {
  const port = env.PORT ?? String(await freePort());
  const proc = Bun.spawn(command, {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', ...env, PORT: port },
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: 'ignore',
  });
  const output = captureOutput(proc);
  const deadline = Date.now() + 20_000;
  while (!output.text().includes('listening on')) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      // What it printed before exiting may still be in the pipes: read them to their end.
      await output.done;
      throw new Error(`server did not start (exit ${proc.exitCode}):\n${output.text()}`);
    }
    await Bun.sleep(20);
  }
  return {
    endpoint: `http://127.0.0.1:${port}${env.TUS_PATH ?? '/files'}/`,
    proc,
    output: output.text,
    async kill(signal = 'SIGKILL') {
      proc.kill(signal);
      return proc.exited;
    },
  };
}

export async function freePort(): Promise<number> {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

/**
 * Server processes a crash test starts, kills and restarts: each `server(...)` gets its own data
 * directory and port and restarts with the same environment; `cleanup` kills what still runs and
 * removes the directories.
 */
export function serverFleet() {
  const running: ServerProcess[] = [];
  const dirs: string[] = [];
  return {
    async server(name: string, vars: Record<string, string> = {}) {
      const dataDir = await mkdtemp(join(tmpdir(), `tusflow-${name}-`));
      dirs.push(dataDir);
      const env = { PORT: String(await freePort()), DATA_DIR: dataDir, ...vars };
      const start = async () => {
        const server = await spawnServer(env);
        running.push(server);
        return server;
      };
      return { dataDir, start };
    },
    async cleanup() {
      await Promise.all(running.map((s) => (s.proc.exitCode === null ? s.kill('SIGKILL') : undefined)));
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** The environment of a server storing into `bucket` of the test radosgw, with records in Redis. */
export function s3RedisVars(s3: S3Env, bucket: string, keyPrefix: string): Record<string, string> {
  return {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    REDIS_URL,
    STATE_KEY_PREFIX: `${keyPrefix}:${crypto.randomUUID().slice(0, 8)}:`,
    LOCK_LEASE_MS: '1000',
  };
}
