/**
 * The `tusflow` command as users run it: real processes, bin/tusflow.js under node (the npx path:
 * the built CLI on Node, no Bun needed) and under Bun (the sources on Bun), on loopback.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';
import { envSchema } from '../../src/wiring/config.ts';
import { DESCRIPTIONS, flagName, parseArgs, UsageError, variables } from '../../src/runtime/cli.ts';
import { ensureBuilt } from '../support/build.ts';
import { captureOutput, freePort } from '../support/process.ts';
import { TUS } from '../support/server.ts';

// Real processes on a busy machine: more than bun's default 5 s each.
setDefaultTimeout(20_000);

const ROOT = new URL('../..', import.meta.url).pathname;
const KEYS = Object.keys(envSchema.shape);
const NODE_BIN = Bun.which('node') ?? 'node';
const NODE = [NODE_BIN, 'bin/tusflow.js'];
const BUN = [process.execPath, 'bin/tusflow.js'];
// The environment of a user who set nothing (the test runner's own variables aside), and no Bun on
// the PATH: under node, tusflow must not need it.
const CLEAN = {
  ...(Object.fromEntries(Object.entries(process.env).filter(([name]) => !KEYS.includes(name))) as Record<string, string>),
  PATH: (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !existsSync(join(dir, 'bun')))
    .join(':'),
};

// Under node, bin/tusflow.js runs the built CLI (dist/runtime/cli.js).
beforeAll(() => ensureBuilt(), 60_000);

/** The program a process runs, and how many children it started: the server is the process itself. */
function processOf(pid: number): { exe: string; children: number } {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return { exe: realpathSync(readlinkSync(`/proc/${pid}/exe`)), children: children ? children.split(' ').length : 0 };
}

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tusflow-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Running {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  output(): string;
  waitFor(text: string): Promise<void>;
}

function start(command: string[], args: string[], env: Record<string, string> = {}): Running {
  const proc = Bun.spawn([...command, ...args], { cwd: ROOT, env: { ...CLEAN, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  const output = captureOutput(proc);
  return {
    proc,
    output: output.text,
    async waitFor(wanted) {
      const deadline = Date.now() + 15_000;
      while (!output.text().includes(wanted)) {
        if (proc.exitCode !== null || Date.now() > deadline) {
          proc.kill('SIGKILL');
          await output.done;
          throw new Error(`no "${wanted}" (exit ${proc.exitCode}):\n${output.text()}`);
        }
        await Bun.sleep(20);
      }
    },
  };
}

/** Runs to the end: exit code and everything printed. */
async function run(command: string[], args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([...command, ...args], { cwd: ROOT, env: { ...CLEAN, ...env }, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `tusflow [flags]` on a free port; resolves once it listens. */
async function serve(command: string[], args: string[], env: Record<string, string> = {}) {
  const port = await freePort();
  const server = start(command, ['--host', '127.0.0.1', '--port', String(port), ...args], env);
  await server.waitFor('listening on');
  return { ...server, base: `http://127.0.0.1:${port}` };
}

test('every envSchema variable has a flag and a description, and nothing else does', () => {
  expect(Object.keys(DESCRIPTIONS).sort()).toEqual([...KEYS].sort());
  expect(variables().map((v): string => v.name)).toEqual(KEYS);
  for (const { name, boolean } of variables()) {
    expect(DESCRIPTIONS[name].length).toBeGreaterThan(0);
    const value = boolean ? 'false' : 'x';
    expect(parseArgs([flagName(name), value]).env).toEqual({ [name]: value });
    expect(parseArgs(['serve', `${flagName(name)}=${value}`])).toEqual({ command: 'serve', env: { [name]: value } });
  }
  expect(variables().find((v) => v.name === 'TRUST_PROXY')?.boolean).toBe(true);
  expect(flagName('S3_BUCKET')).toBe('--s3-bucket');
  expect(parseArgs(['--trust-proxy', '--port', '1']).env).toEqual({ TRUST_PROXY: 'true', PORT: '1' });
  expect(parseArgs(['cleanup']).command).toBe('cleanup');
  expect(() => parseArgs(['--port'])).toThrow(UsageError);
  expect(() => parseArgs(['serve', 'extra'])).toThrow(UsageError);
});

test('--help (through node) lists every variable with its flag and default', async () => {
  const { code, stdout } = await run(NODE, ['--help']);
  expect(code).toBe(0);
  expect(stdout).toContain('tusflow cleanup');
  for (const key of KEYS) expect(stdout).toContain(key);
  for (const key of KEYS) expect(stdout).toContain(flagName(key));
  expect(stdout).toMatch(/--port +PORT +1080 +port to listen on/);
  expect(stdout).toMatch(/--upload-ttl-seconds +UPLOAD_TTL_SECONDS +86400 /);
});

test('--version prints the package version, on Node and on Bun', async () => {
  const { version } = (await Bun.file(join(ROOT, 'package.json')).json()) as { version: string };
  for (const command of [NODE, BUN]) {
    const { code, stdout } = await run(command, ['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(version);
  }
});

test('tusflow --port --data-dir (through node) serves on Node itself, and SIGTERM stops it with exit 0', async () => {
  const dir = tempDir();
  // PORT in the environment is wrong on purpose: the flag wins.
  const server = await serve(NODE, ['--data-dir', dir], { PORT: 'not-a-port' });
  expect(processOf(server.proc.pid)).toEqual({ exe: realpathSync(NODE_BIN), children: 0 });
  expect(server.output()).toContain(`"storage":"files in ${dir}"`);
  const created = await fetch(`${server.base}/files/`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
  expect(created.status).toBe(201);
  const id = created.headers.get('Location')!.split('/').pop()!;
  expect(readdirSync(dir)).toContain(`${id}.json`);
  server.proc.kill('SIGTERM');
  expect(await server.proc.exited).toBe(0);
  expect(server.output()).toContain('SIGTERM: finishing in-flight uploads');
});

test('a flag sets its variable and overrides the environment: --max-size 10 → Tus-Max-Size: 10 (on Bun itself)', async () => {
  const server = await serve(BUN, ['--max-size', '10', '--tus-path=/up', '--data-dir', tempDir()], { MAX_SIZE: '99' });
  expect(processOf(server.proc.pid)).toEqual({ exe: realpathSync(process.execPath), children: 0 });
  const options = await fetch(`${server.base}/up/`, { method: 'OPTIONS' });
  expect(options.headers.get('Tus-Max-Size')).toBe('10');
  server.proc.kill('SIGTERM');
  expect(await server.proc.exited).toBe(0);
});

test('an unknown flag is named, with exit code 2', async () => {
  const { code, stderr } = await run(BUN, ['--data-dri', '/tmp/x']);
  expect(code).toBe(2);
  expect(stderr).toContain('unknown flag --data-dri');
  expect(stderr).toContain('--data-dir');
  expect((await run(BUN, ['cleanup', '--nope'])).code).toBe(2);
});

test("a bad value stops it with the server's message naming the variable, exit 1, on Node and on Bun", async () => {
  for (const command of [NODE, BUN]) {
    const { code, stderr } = await run(command, ['--port', 'eighty']);
    expect(code).toBe(1);
    expect(stderr).toContain('PORT="eighty"');
    const cleanup = await run(command, ['cleanup', '--upload-ttl-seconds', '0']);
    expect(cleanup.code).toBe(1);
    expect(cleanup.stderr).toContain('UPLOAD_TTL_SECONDS');
  }
});

test('tusflow cleanup removes an expired upload from DATA_DIR and says so', async () => {
  const dir = tempDir();
  const server = await serve(BUN, ['--data-dir', dir, '--upload-ttl-seconds', '1']);
  const post = () => fetch(`${server.base}/files/`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } });
  const created = await post();
  expect(created.status).toBe(201);
  const id = created.headers.get('Location')!.split('/').pop()!;
  server.proc.kill('SIGTERM');
  expect(await server.proc.exited).toBe(0);
  expect(readdirSync(dir)).toEqual(expect.arrayContaining([id, `${id}.json`]));

  await Bun.sleep(1_200); // past UPLOAD_TTL_SECONDS
  // The store comes from the environment here, the same way the flags would set it.
  const { code, stdout } = await run(NODE, ['cleanup'], { DATA_DIR: dir });
  expect(code).toBe(0);
  expect(stdout).toContain('removed 1 expired upload');
  expect(readdirSync(dir).filter((name) => name.startsWith(id))).toEqual([]);

  const again = await run(BUN, ['cleanup', '--data-dir', dir]);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('removed 0 expired uploads');
});
