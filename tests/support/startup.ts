/**
 * Server processes expected to refuse to start: each runs with its output piped (as under systemd
 * or in a container), and both pipes are read to their end, so a line written just before the exit
 * is seen or its loss is caught.
 */
import { freePort } from './process.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

/** The server entries, as their npm scripts run them. */
export const ENTRIES = {
  bun: [process.execPath, 'src/runtime/bun.ts'],
  deno: [`${ROOT}node_modules/.bin/deno`, 'run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys', 'src/runtime/deno.ts'],
  /** From dist/: call ensureBuilt() (tests/support/build.ts) first. */
  node: [Bun.which('node') ?? 'node', 'dist/runtime/node.js'],
  worker: [process.execPath, 'scripts/worker.ts'],
} as const;
export type Entry = keyof typeof ENTRIES;

export interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs an entry with `env` (on loopback, on a free port unless PORT is given) until it exits; one
 * that is still running after `timeoutMs` is killed and reported with a null code.
 */
export async function runUntilExit(entry: Entry, env: Record<string, string>, timeoutMs = 30_000): Promise<Exited> {
  const started = performance.now();
  const proc = Bun.spawn([...ENTRIES[entry]], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(await freePort()), ...env },
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: 'ignore',
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  clearTimeout(timer);
  return { code: proc.signalCode ? null : proc.exitCode, stdout, stderr, ms: performance.now() - started };
}

/** The one line a refused start prints on stderr: `tusflow: <reason>`, nothing on stdout, exit 1. */
export function refusal(exited: Exited): string {
  const lines = exited.stderr.split('\n').filter(Boolean);
  if (exited.code !== 1 || exited.stdout !== '' || lines.length !== 1 || !lines[0]!.startsWith('tusflow: ')) {
    throw new Error(`expected one line on stderr and exit 1, got exit ${exited.code}:\nstdout: ${exited.stdout}\nstderr: ${exited.stderr}`);
  }
  return lines[0]!;
}
