/**
 * The package as users get it: `npm pack`, installed from the tarball into fresh projects and used
 * the way the README says. Under plain Node and under Bun: embedded in an app and uploaded to with
 * tus-js-client, the stored bytes compared; the `tusflow` command under Node; every public entry
 * type-checked by a strict NodeNext project. Also: deno.json matches package.json, and `deno task
 * start` in this checkout (after npm install) serves.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt } from '../support/build.ts';
import { freePort } from '../support/process.ts';
import { tusUpload } from '../support/tus-client.ts';

// Installs and real processes on a busy machine.
setDefaultTimeout(60_000);

const ROOT = new URL('../..', import.meta.url).pathname;
const NODE = Bun.which('node') ?? 'node';
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
// From the npm cache where it can: the repository's own install has fetched every dependency.
const NPM_INSTALL = ['npm', 'install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
const TYPES_NODE = `@types/node@${JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')).version}`;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const PUBLIC_ENTRIES = Object.keys(pkg.exports).filter((key) => key !== './package.json');

let work: string;
let tarball: string;
let packed: string[];
let nodeProject: string;
let bunProject: string;
const running: ChildProcess[] = [];

/** Runs a command to its end; rejects with its output when it fails. */
async function run(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  const proc = Bun.spawn(cmd, { cwd, env: { ...process.env, ...env }, stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: out + err };
}

async function mustRun(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<string> {
  const { code, output } = await run(cmd, cwd, env);
  if (code !== 0) throw new Error(`${cmd.join(' ')} exited ${code}:\n${output}`);
  return output;
}

/** Starts a server process and resolves with the URL it prints once it listens. */
function startServer(cmd: string[], cwd: string, env: Record<string, string> = {}): Promise<{ url: string; proc: ChildProcess }> {
  // Its own process group: npx and deno task start the server as their child, and a SIGTERM to them
  // alone does not reach it (a terminal's Ctrl-C goes to the whole group).
  const proc = spawn(cmd[0]!, cmd.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.push(proc);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd.join(' ')} did not listen within 30 s:\n${output}`)), 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const url = /listening on (http:\/\/[^\s"]+)/.exec(output)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ url, proc });
      }
    };
    proc.stdout!.on('data', read);
    proc.stderr!.on('data', read);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd.join(' ')} exited ${code} before listening:\n${output}`));
    });
  });
}

/** Whether any process of the group `pid` leads is still there. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the server's process group; resolves once every process of it has gone: true when they
 * went on SIGTERM, false when they needed the SIGKILL that follows 10 s later.
 */
async function stop(proc: ChildProcess): Promise<boolean> {
  const pid = proc.pid!;
  if (!groupAlive(pid)) return true;
  process.kill(-pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (groupAlive(pid) && Date.now() < deadline) await Bun.sleep(50);
  if (!groupAlive(pid)) return true;
  process.kill(-pid, 'SIGKILL');
  return false;
}

/** 300 KiB of non-repeating bytes, sent in 64 KiB PATCHes: five requests, resumed at each offset. */
function testBytes(seed: number): Uint8Array {
  const bytes = new Uint8Array(300 * 1024);
  let x = seed;
  for (let i = 0; i < bytes.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Uploads through `endpoint` and returns what the file store holds for that upload. */
async function uploadAndRead(endpoint: string, dataDir: string, seed: number): Promise<{ sent: Uint8Array; stored: Uint8Array }> {
  const sent = testBytes(seed);
  const { url } = await tusUpload(endpoint, sent, { chunkSize: 64 * 1024, metadata: { filename: 'package.bin' } });
  const id = new URL(url).pathname.split('/').pop()!;
  return { sent, stored: new Uint8Array(readFileSync(join(dataDir, id))) };
}

beforeAll(async () => {
  // dist/ as the current sources build it. Packed with --ignore-scripts: prepack would delete and
  // rebuild dist/ under the feet of other tests that run it.
  await ensureBuilt();
  work = mkdtempSync(join(tmpdir(), 'tusflow-package-'));
  const [info] = JSON.parse(await mustRun(['npm', 'pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT)) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = join(work, info!.filename);
  packed = info!.files.map((file) => file.path);

  nodeProject = join(work, 'node');
  mkdirSync(nodeProject);
  await mustRun(['npm', 'init', '-y'], nodeProject);
  await mustRun(['npm', 'pkg', 'set', 'type=module'], nodeProject);
  await mustRun([...NPM_INSTALL, tarball, 'hono', '@hono/node-server', TYPES_NODE], nodeProject);
  copyFileSync(join(import.meta.dir, 'consumer/embed.mjs'), join(nodeProject, 'embed.mjs'));

  bunProject = join(work, 'bun');
  mkdirSync(bunProject);
  writeFileSync(join(bunProject, 'package.json'), JSON.stringify({ name: 'bun-consumer', private: true, type: 'module' }));
  await mustRun([process.execPath, 'add', tarball, 'hono', '@hono/node-server'], bunProject);
  copyFileSync(join(import.meta.dir, 'consumer/embed.mjs'), join(bunProject, 'embed.mjs'));
}, 180_000);

afterAll(async () => {
  await Promise.all(running.map(stop));
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the build, the sources, the command and the license, and nothing of the repository besides', () => {
  for (const path of ['package.json', 'README.md', 'LICENSE', 'bin/tusflow.js', 'dist/index.js', 'dist/index.d.ts', 'dist/runtime/cli.js', 'src/index.ts']) {
    expect(packed).toContain(path);
  }
  for (const entry of PUBLIC_ENTRIES) {
    const { types, bun, import: node } = pkg.exports[entry];
    // No "deno" condition: Deno refuses to strip types under node_modules, so it takes the JavaScript.
    expect(pkg.exports[entry].deno).toBeUndefined();
    expect([entry, packed.includes(types.slice(2)), packed.includes(bun.slice(2)), packed.includes(node.slice(2))]).toEqual([entry, true, true, true]);
  }
  expect(packed.filter((path) => /^(tests|bench|scripts|\.ci|node_modules|data|docs)\//.test(path))).toEqual([]);
  // The test suite's build stamp (tests/support/build.ts) is not part of the build.
  expect(packed).not.toContain('dist/.built');
  expect(packed.filter((path) => path.startsWith('src/web/') && path !== 'src/web/page.generated.ts').length).toBeLessThan(20);
  // What `npm install tusflow` brings: no runtime binary.
  expect(Object.keys(pkg.dependencies)).not.toContain('bun');
  expect(Object.keys(pkg.dependencies)).not.toContain('deno');
  expect(existsSync(join(nodeProject, 'node_modules/bun'))).toBe(false);
  expect(existsSync(join(nodeProject, 'node_modules/deno'))).toBe(false);
});

test('npm publish sends package.json as it is: nothing to auto-correct, no bin dropped', async () => {
  // npm 11 drops a bin written "./bin/tusflow.js" from what it publishes, with only a warning.
  // The dry run asks the registry about the package, retrying for a minute when it is out of reach:
  // then there is nothing to check, and the test says so instead of failing.
  const ping = await run(['npm', 'ping', '--fetch-retries=0', '--fetch-timeout=5000'], ROOT);
  if (ping.code !== 0) {
    const reason = ping.output.split('\n').find((line) => line.startsWith('npm error') && !line.endsWith('network')) ?? ping.output.trim().slice(0, 200);
    console.log(`npm publish --dry-run: skipped, the registry cannot be reached (${reason})`);
    return;
  }
  const { code, output } = await run(['npm', 'publish', '--dry-run', '--ignore-scripts', '--fetch-retries=0'], ROOT);
  if (code !== 0) throw new Error(`npm publish --dry-run exited ${code}:\n${output}`);
  expect(output).toContain('+ tusflow@');
  const warnings = output.split('\n').filter((line) => line.startsWith('npm warn') && !line.includes('requires you to be logged in'));
  expect(warnings).toEqual([]);
});

test('under plain Node, every entry loads from the installed package', async () => {
  const script = `for (const e of ${JSON.stringify(PUBLIC_ENTRIES.map((key) => `tusflow${key.slice(1)}`))}) console.log(e, Object.keys(await import(e)).length);`;
  const output = await mustRun([NODE, '--input-type=module', '-e', script], nodeProject);
  const counts = Object.fromEntries(
    output
      .trim()
      .split('\n')
      .map((line) => line.split(' ') as [string, string]),
  );
  expect(Object.keys(counts)).toEqual(['tusflow', 'tusflow/s3', 'tusflow/redis', 'tusflow/upstash', 'tusflow/file', 'tusflow/server']);
  for (const count of Object.values(counts)) expect(Number(count)).toBeGreaterThan(0);
  // Node takes the compiled JavaScript; Bun (below) the TypeScript sources.
  expect(await mustRun([NODE, '--input-type=module', '-e', "console.log(import.meta.resolve('tusflow/file'))"], nodeProject)).toEndWith(
    '/node_modules/tusflow/dist/entries/file.js\n',
  );
});

test('under Node, an app that embeds tusflow (node:http via @hono/node-server) stores the uploaded bytes', async () => {
  const dataDir = join(work, 'node-data');
  const { url, proc } = await startServer([NODE, 'embed.mjs', dataDir], nodeProject);
  expect(await (await fetch(`${url}/api/health`)).text()).toBe('ok');
  // nodeServeOptions hands the app the connection's address (bare serve({ fetch }) does not).
  expect(await (await fetch(`${url}/api/client`)).text()).toBe('127.0.0.1');
  const { sent, stored } = await uploadAndRead(`${url}/api/uploads/`, dataDir, 1);
  expect(stored.length).toBe(sent.length);
  expect(Buffer.compare(stored, sent)).toBe(0);
  expect(await stop(proc)).toBe(true);
});

test('under Bun, the same app from a bun-installed package (the TypeScript sources) stores the uploaded bytes', async () => {
  expect(await mustRun([process.execPath, '-e', "console.log(import.meta.resolve('tusflow/file'))"], bunProject)).toEndWith(
    '/node_modules/tusflow/src/entries/file.ts\n',
  );
  const dataDir = join(work, 'bun-data');
  const { url, proc } = await startServer([process.execPath, 'embed.mjs', dataDir], bunProject);
  // bunServeOptions hands the app the connection's address (bare Bun.serve({ fetch }) does not).
  expect(await (await fetch(`${url}/api/client`)).text()).toBe('127.0.0.1');
  const { sent, stored } = await uploadAndRead(`${url}/api/uploads/`, dataDir, 2);
  expect(Buffer.compare(stored, sent)).toBe(0);
  expect(await stop(proc)).toBe(true);
});

test('under Deno, the same app from the npm-installed package (the compiled JavaScript) stores the uploaded bytes', async () => {
  const deno = [join(ROOT, 'node_modules/.bin/deno'), 'run', '--node-modules-dir=manual', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--allow-sys'];
  expect(await mustRun([deno[0]!, 'eval', '--node-modules-dir=manual', "console.log(import.meta.resolve('tusflow/file'))"], nodeProject, { NO_COLOR: '1' })).toEndWith(
    '/node_modules/tusflow/dist/entries/file.js\n',
  );
  const dataDir = join(work, 'deno-embed-data');
  const { url, proc } = await startServer([...deno, 'embed.mjs', dataDir], nodeProject, { NO_COLOR: '1' });
  const { sent, stored } = await uploadAndRead(`${url}/api/uploads/`, dataDir, 5);
  expect(Buffer.compare(stored, sent)).toBe(0);
  expect(await stop(proc)).toBe(true);
});

test('npx tusflow under Node serves uploads into --data-dir', async () => {
  const dataDir = join(work, 'cli-data');
  const port = await freePort();
  // No Bun on the PATH: the command must not need it.
  const PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !existsSync(join(dir, 'bun')))
    .join(':');
  const { url, proc } = await startServer(['npx', '--no-install', 'tusflow', '--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir], nodeProject, {
    PATH,
  });
  expect(url).toBe(`http://127.0.0.1:${port}/files/`);
  const { sent, stored } = await uploadAndRead(url, dataDir, 3);
  expect(Buffer.compare(stored, sent)).toBe(0);
  expect(await stop(proc)).toBe(true);
});

const EVERY_ENTRY = `
import { createTusflow, MemoryDataStore, type Tusflow, type TusflowOptions } from 'tusflow';
import { FileDataStore, FileStateStore } from 'tusflow/file';
import { RedisLocker, RedisRateLimiter, RedisStateStore, tcpRedisRunner } from 'tusflow/redis';
import { S3Client, S3DataStore } from 'tusflow/s3';
import { serverConfig, serverStores, tusflowFromEnv, type ServerStores } from 'tusflow/server';
import { upstashClient, upstashRunner } from 'tusflow/upstash';

const options: TusflowOptions = { path: '/api/uploads', maxSize: 2 ** 30, store: new MemoryDataStore() };
const memory: Tusflow = createTusflow(options);
const files = createTusflow({ store: new FileDataStore('./data'), state: new FileStateStore('./data') });
const runner = tcpRedisRunner('redis://127.0.0.1:6379/0');
const s3 = new S3Client({ bucket: 'uploads', region: 'auto', accessKeyId: 'key', secretAccessKey: 'secret' });
const redis = createTusflow({
  store: new S3DataStore({ client: s3, prefix: 'uploads/', partSize: 8 * 2 ** 20, parallelParts: 4 }),
  state: new RedisStateStore({ runner, prefix: 'tus:', finishedTtlMs: 86_400_000, graceMs: 3_600_000 }),
  locker: new RedisLocker({ runner, prefix: 'tus:', leaseMs: 30_000, timeoutMs: 10_000 }),
  rateLimiter: new RedisRateLimiter({ runner, prefix: 'tus:', limit: 60 }),
});
const upstash = upstashRunner(upstashClient({ url: 'https://example.upstash.io', token: 'token' }));
const shared = createTusflow({ state: new RedisStateStore({ runner: upstash, prefix: 'tus:', finishedTtlMs: 1, graceMs: 1 }) });

export async function fromEnv(): Promise<Response> {
  const uploads: Tusflow = await tusflowFromEnv(process.env, { path: '/api/uploads' });
  const { env } = await serverConfig(process.env);
  const stores: ServerStores = await serverStores(env);
  await uploads.shutdown(1000);
  return uploads.fetch(new Request('http://localhost/api/uploads/'), { remoteAddress: stores.description });
}
export const apps = [memory.app, files.app, redis.app, shared.app];
`;

/** The server helpers as the README uses them, with a Hono app's fetch and with tusflow's own. */
const HELPERS = `
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { bunServeOptions, createTusflow, nodeServeOptions } from 'tusflow';

const uploads = createTusflow({ path: '/api/uploads' });
const app = new Hono();
app.route('/', uploads.app);
export const onNode = () => [serve({ port: 0, ...nodeServeOptions(app.fetch) }), serve({ port: 0, ...nodeServeOptions(uploads.fetch) })];
export const onBun = bunServeOptions(app.fetch, { connectionIdleTimeoutSeconds: 30 });
`;

const WRONG = `
import { createTusflow } from 'tusflow';
import { FileDataStore } from 'tusflow/file';
import { tusflowFromEnv } from 'tusflow/server';
export const a: number = createTusflow();
export const b = new FileDataStore(42);
export const c: string = tusflowFromEnv({});
`;

test('a strict NodeNext TypeScript project type-checks every public entry with no error, and sees a misuse', async () => {
  const compilerOptions = {
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    target: 'ES2022',
    lib: ['ES2022'],
    types: ['node'],
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  };
  writeFileSync(join(nodeProject, 'every-entry.ts'), EVERY_ENTRY);
  writeFileSync(join(nodeProject, 'wrong.ts'), WRONG);
  writeFileSync(join(nodeProject, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['every-entry.ts'] }));
  writeFileSync(join(nodeProject, 'tsconfig.wrong.json'), JSON.stringify({ compilerOptions, files: ['wrong.ts'] }));

  const good = await run([NODE, TSC, '-p', 'tsconfig.json'], nodeProject);
  expect(good.output).toBe('');
  expect(good.code).toBe(0);

  // @hono/node-server's own types need the DOM's (hono's WebSocket helper): that file gets them.
  writeFileSync(join(nodeProject, 'helpers.ts'), HELPERS);
  writeFileSync(join(nodeProject, 'tsconfig.helpers.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, lib: ['ES2022', 'DOM'] }, files: ['helpers.ts'] }));
  const helpers = await run([NODE, TSC, '-p', 'tsconfig.helpers.json'], nodeProject);
  expect(helpers.output).toBe('');
  expect(helpers.code).toBe(0);

  // The same project sees through the types: the three misuses are errors, nothing else is.
  const wrong = await run([NODE, TSC, '-p', 'tsconfig.wrong.json'], nodeProject);
  expect(wrong.code).not.toBe(0);
  const errors = wrong.output
    .trim()
    .split('\n')
    .filter((line) => / error TS\d+/.test(line));
  expect(errors.map((line) => /^wrong\.ts\((\d+),/.exec(line)?.[1])).toEqual(['5', '6', '7']);
});

test('deno.json is the same package as package.json: version and subpaths', () => {
  const deno = JSON.parse(readFileSync(join(ROOT, 'deno.json'), 'utf8'));
  expect(deno.version).toBe(pkg.version);
  expect(Object.keys(deno.exports)).toEqual(PUBLIC_ENTRIES);
  for (const entry of PUBLIC_ENTRIES) expect([entry, deno.exports[entry]]).toEqual([entry, pkg.exports[entry].bun]);
});

test('deno task start, in a checkout after npm install, serves uploads', async () => {
  const dataDir = join(work, 'deno-data');
  const port = await freePort();
  const { url, proc } = await startServer([join(ROOT, 'node_modules/.bin/deno'), 'task', 'start'], ROOT, {
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    NO_COLOR: '1',
  });
  expect(url).toBe(`http://127.0.0.1:${port}/files/`);
  const { sent, stored } = await uploadAndRead(url, dataDir, 4);
  expect(Buffer.compare(stored, sent)).toBe(0);
  expect(await stop(proc)).toBe(true);
});
