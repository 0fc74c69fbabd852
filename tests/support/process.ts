import type { Subprocess } from 'bun';

export interface ServerProcess {
  endpoint: string;
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  /** Everything the process printed so far. */
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
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
  let text = '';
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  void drain(proc.stdout);
  void drain(proc.stderr);
  const deadline = Date.now() + 20_000;
  while (!text.includes('listening on')) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`server did not start (exit ${proc.exitCode}):\n${text}`);
    }
    await Bun.sleep(20);
  }
  return {
    endpoint: `http://127.0.0.1:${port}${env.TUS_PATH ?? '/files'}/`,
    proc,
    output: () => text,
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
