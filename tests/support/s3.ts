// A real S3 server for tests: a throwaway Ceph radosgw cluster (scripts/radosgw.sh), one per
// test process, started on first use. It is stopped:
// - at the end of `bun test`, by stopS3() in the global teardown (tests/support/teardown.ts,
//   preloaded by bunfig.toml), so nothing of it is left when the run returns;
// - on exit or SIGINT/SIGTERM/SIGHUP of any other process (a bench, a script), by the handlers
//   below (`bun test` itself emits no 'exit' event: they do not run there);
// - in every case, SIGKILL included, by radosgw.sh's watchdog (RADOSGW_OWNER_PID), within a
//   second of this process ending, even if the checkout holding radosgw.sh is deleted meanwhile.
//
// Set TUSFLOW_TEST_S3_ENDPOINT (e.g. http://127.0.0.1:7480) to use an already running radosgw
// instead; it must know the test user (access key tusflow-test-key, secret tusflow-test-secret).
// TUSFLOW_TEST_S3_VERBOSE=1 echoes the start script's progress.
import { AwsClient } from 'aws4fetch';
import { readFileSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface S3Env {
  /** e.g. http://127.0.0.1:23456 — buckets are addressed path-style: `${endpoint}/${bucket}/${key}` */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Creates an empty bucket with a unique name and returns that name. */
  newBucket(): Promise<string>;
  /** An object's bytes read straight from S3 (not through a server); empty when it is missing. */
  object(bucket: string, key: string): Promise<Uint8Array>;
  /** Stops the cluster and removes its directory (no-op for an external endpoint). */
  stop(): Promise<void>;
}

export const S3_TEST_ACCESS_KEY = 'tusflow-test-key';
export const S3_TEST_SECRET_KEY = 'tusflow-test-secret';
export const S3_TEST_REGION = 'us-east-1';

const SCRIPT = resolve(import.meta.dir, '../../scripts/radosgw.sh');
/** radosgw.sh uses PORT (radosgw), PORT+1 (mon), PORT+2..PORT+9 (OSD). */
const PORTS_PER_CLUSTER = 10;
const START_ATTEMPTS = 2;

let current: Promise<S3Env> | undefined;
/** Directory of the running cluster, for the synchronous exit handler. */
let liveDir: string | undefined;
let handlersInstalled = false;

export function startS3(): Promise<S3Env> {
  current ??= create();
  return current;
}

async function create(): Promise<S3Env> {
  const external = process.env.TUSFLOW_TEST_S3_ENDPOINT;
  if (external) {
    return makeEnv(external.replace(/\/+$/, ''), async () => {
      current = undefined;
    });
  }

  installExitHandlers();
  const failures: string[] = [];
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await findFreePortBlock(PORTS_PER_CLUSTER);
    const dir = mkdtempSync(join(tmpdir(), 'tusflow-rgw-'));
    liveDir = dir;
    const { code, stderr } = await runScript(['start', dir, String(port)]);
    if (code === 0) {
      let stopping: Promise<void> | undefined;
      return makeEnv(
        `http://127.0.0.1:${port}`,
        () =>
          (stopping ??= (async () => {
            const res = await runScript(['stop', dir]);
            if (liveDir === dir) liveDir = undefined;
            current = undefined;
            if (res.code !== 0) throw new Error(`radosgw.sh stop failed (exit ${res.code}):\n${res.stderr}`);
          })()),
      );
    }
    failures.push(`attempt ${attempt} (port ${port}, exit ${code}):\n${stderr.trimEnd()}`);
    // The script already killed its daemons; remove the directory (its logs are in `stderr`).
    await runScript(['stop', dir]);
    if (liveDir === dir) liveDir = undefined;
  }
  throw new Error(`could not start radosgw (scripts/radosgw.sh):\n${failures.join('\n\n')}`);
}

/** Stops the cluster this process started, if any (without starting one); a failed start is ignored. */
export async function stopS3(): Promise<void> {
  const env = await current?.catch(() => undefined);
  await env?.stop();
}

function makeEnv(endpoint: string, stop: () => Promise<void>): S3Env {
  const client = new AwsClient({
    accessKeyId: S3_TEST_ACCESS_KEY,
    secretAccessKey: S3_TEST_SECRET_KEY,
    region: S3_TEST_REGION,
    service: 's3',
    retries: 0,
  });
  return {
    endpoint,
    region: S3_TEST_REGION,
    accessKeyId: S3_TEST_ACCESS_KEY,
    secretAccessKey: S3_TEST_SECRET_KEY,
    async newBucket() {
      const name = `tusflow-test-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
      const res = await client.fetch(`${endpoint}/${name}`, { method: 'PUT' });
      if (!res.ok) throw new Error(`creating bucket ${name} failed: ${res.status} ${await res.text()}`);
      await res.body?.cancel();
      return name;
    },
    async object(bucket, key) {
      const res = await client.fetch(`${endpoint}/${bucket}/${key}`);
      return res.ok ? new Uint8Array(await res.arrayBuffer()) : new Uint8Array();
    },
    stop,
  };
}

async function runScript(args: string[]): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn(['bash', SCRIPT, ...args], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'pipe',
    env: { ...process.env, RADOSGW_OWNER_PID: String(process.pid) },
  });
  const verbose = !!process.env.TUSFLOW_TEST_S3_VERBOSE;
  let stderr = '';
  const decoder = new TextDecoder();
  for await (const chunk of proc.stderr) {
    const text = decoder.decode(chunk, { stream: true });
    stderr += text;
    if (verbose) process.stderr.write(text);
  }
  const code = await proc.exited;
  return { code, stderr };
}

/** A port P on 127.0.0.1 with P..P+count-1 all free, below Linux's ephemeral range. */
async function findFreePortBlock(count: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * (32000 - 20000 - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no block of ${count} free ports found on 127.0.0.1`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', () => done(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => done(true)));
  });
}

/** Synchronous last-resort cleanup: SIGKILL the cluster's daemons, remove its directory. */
function killClusterSync(): void {
  const dir = liveDir;
  if (!dir) return;
  liveDir = undefined;
  try {
    for (const f of readdirSync(join(dir, 'pids'))) {
      try {
        const pid: number = Number(readFileSync(join(dir, 'pids', f), 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 1) continue;
        // only a process whose command line names this cluster's directory (pid reuse)
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) continue;
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  } catch {}
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {}
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killClusterSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killClusterSync();
      // let the default action (terminate) happen, as if no handler had been installed
      process.kill(process.pid, signal);
    });
  }
}
