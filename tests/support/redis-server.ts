import type { Subprocess } from 'bun';
import { connect } from 'node:net';
import { freePort } from './process.ts';

/** A redis-server of the test's own (no persistence): it can be killed and started again, empty. */
export interface RedisProcess {
  url: string;
  port: number;
  /** Kills it (SIGKILL by default): everything it held is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  readonly running: boolean;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.end('PING\r\n');
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
    });
    socket.once('error', () => resolve(false));
    socket.setTimeout(500, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

export async function startRedisServer(): Promise<RedisProcess> {
  const port = await freePort();
  let proc: Subprocess | undefined;
  const start = async () => {
    proc = Bun.spawn(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start (exit ${proc.exitCode})`);
      }
      await Bun.sleep(20);
    }
  };
  await start();
  process.once('exit', () => proc?.kill('SIGKILL'));
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    async kill(signal = 'SIGKILL') {
      if (!proc) return;
      proc.kill(signal);
      await proc.exited;
    },
    start,
  };
}
