// The deployment files and the README's "Deploying" steps, checked as far as a machine without the
// platforms can: the systemd unit (`systemd-analyze verify`, and its command and environment file
// serving for real), wrangler.toml and the `wrangler secret put` list against the variables the
// Worker reads (and the Worker serving with exactly those), and the Deno entry serving from S3 and
// Upstash with no write access to the disk, as on Deno Deploy.
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import worker from '../../src/runtime/worker.ts';
import { isSecretName } from '../../src/observability/redact.ts';
import { envSchema } from '../../src/wiring/config.ts';
import { ensureBuilt } from '../support/build.ts';
import { freePort, spawnServer } from '../support/process.ts';
import { startS3 } from '../support/s3.ts';
import { refusal, runUntilExit } from '../support/startup.ts';
import { randomBytes, sha256, TUS } from '../support/server.ts';
import { startUpstashBridge } from '../support/upstash-bridge.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const UNIT = join(ROOT, 'deploy/tusflow.service');
const ENV_FILE = join(ROOT, 'deploy/tusflow.env');
const VARIABLES = Object.keys(envSchema.shape);

const dirs: string[] = [];
const tempDir = async (name: string) => {
  const dir = await mkdtemp(join(tmpdir(), `tusflow-${name}-`));
  dirs.push(dir);
  return dir;
};
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** `KEY=value` lines; comments and blank lines skipped (systemd's EnvironmentFile= syntax, unquoted). */
const keyValues = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );

/** The unit's settings in one section: name → every value given (in order). */
async function unitSettings(of = '[Service]'): Promise<Map<string, string[]>> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of (await readFile(UNIT, 'utf8')).split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === of) {
      const at = line.indexOf('=');
      const name = line.slice(0, at);
      settings.set(name, [...(settings.get(name) ?? []), line.slice(at + 1)]);
    }
  }
  return settings;
}

/** The README's "Deploying" section. */
async function deploying(): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Deploying\n');
  expect(start).toBeGreaterThan(0);
  return readme.slice(start, readme.indexOf('\n## ', start + 1));
}

describe('the systemd unit', () => {
  test('is hardened: its own user, an environment file, restarts, writes only DATA_DIR', async () => {
    const s = await unitSettings();
    const one = (name: string) => {
      expect(s.get(name)?.length).toBe(1);
      return s.get(name)![0]!;
    };
    expect(one('User')).toBe('tusflow');
    expect(one('EnvironmentFile')).toBe('/etc/tusflow/tusflow.env');
    expect(one('Restart')).toBe('on-failure');
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(65_536);
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    // DATA_DIR is the state directory, the one path it may write, and the environment file does
    // not move it (its values would override Environment=).
    const environment = keyValues((s.get('Environment') ?? []).join('\n'));
    expect(`/var/lib/${one('StateDirectory')}`).toBe(environment.DATA_DIR!);
    expect(one('ReadWritePaths')).toBe(environment.DATA_DIR!);
    expect(Object.keys(keyValues(await readFile(ENV_FILE, 'utf8')))).not.toContain('DATA_DIR');
    // Longer than the server's own 10 s drain of running PATCHes on SIGTERM.
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(10);
    // A setting that fails every start is not retried forever (systemd reads these in [Unit]).
    const unit = await unitSettings('[Unit]');
    expect(unit.get('StartLimitIntervalSec')).toEqual(['60']);
    expect(unit.get('StartLimitBurst')).toEqual(['5']);
  });

  test('its environment file sets no working AUTH_TOKEN, and the example one stops the server with one line', async () => {
    const text = await readFile(ENV_FILE, 'utf8');
    expect(Object.keys(keyValues(text))).not.toContain('AUTH_TOKEN');
    const example = /^#AUTH_TOKEN=(.+)$/m.exec(text)?.[1];
    expect(example).toBeDefined();
    const run = await runUntilExit('bun', {
      ...keyValues(text),
      AUTH_TOKEN: example!,
      DATA_DIR: await tempDir('placeholder'),
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
    });
    expect(refusal(run)).toMatch(/^tusflow: invalid configuration: AUTH_TOKEN is the example value /);
  });

  test.skipIf(!Bun.which('systemd-analyze'))(
    'passes systemd-analyze verify (its /opt/tusflow taken to be this checkout)',
    async () => {
      const dir = await tempDir('unit');
      const unit = join(dir, 'tusflow.service');
      await writeFile(unit, (await readFile(UNIT, 'utf8')).replaceAll('/opt/tusflow', ROOT.replace(/\/$/, '')));
      const proc = Bun.spawn(['systemd-analyze', 'verify', unit], { stdout: 'pipe', stderr: 'pipe' });
      const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      // Unknown keys and bad values are only warnings (exit 0): any output counts as a failure.
      expect(`${out}${err}`).toBe('');
      expect(code).toBe(0);
      // The check itself refuses a misspelt option.
      await writeFile(unit, (await readFile(unit, 'utf8')).replace('NoNewPrivileges=', 'NoNewPrivilege='));
      const bad = Bun.spawn(['systemd-analyze', 'verify', unit], { stdout: 'pipe', stderr: 'pipe' });
      expect(await new Response(bad.stderr).text()).toContain("Unknown key 'NoNewPrivilege'");
    },
    30_000,
  );

  test('its command with its environment file serves, stores the bytes, and stops with exit 0 on SIGTERM', async () => {
    await ensureBuilt();
    const s = await unitSettings();
    const file = keyValues(await readFile(ENV_FILE, 'utf8'));
    const dataDir = await tempDir('unit-data');
    // As systemd would run it, with this checkout as /opt/tusflow, a temporary DATA_DIR and a
    // loopback port (the file's PORT and HOST are for the machine it is installed on).
    // The token the file leaves to set.
    const token = 'a-token-of-this-test';
    const env = { ...keyValues(s.get('Environment')!.join('\n')), ...file, AUTH_TOKEN: token, DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: String(await freePort()) };
    const command = s.get('ExecStart')![0]!.split(' ');
    expect(existsSync(join(ROOT, command[1]!))).toBe(true);
    const server = await spawnServer(env, command);
    try {
      const options = await fetch(server.endpoint, { method: 'OPTIONS', headers: TUS });
      expect(options.headers.get('Tus-Max-Size')).toBe(String(5 * 2 ** 30)); // MAX_SIZE=5GiB from the file
      const refused = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } });
      expect(refused.status).toBe(401);

      const bytes = randomBytes(256 * 1024);
      const auth = { Authorization: `Bearer ${token}` };
      const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, ...auth, 'Upload-Length': String(bytes.length) } });
      expect(created.status).toBe(201);
      const url = created.headers.get('Location')!;
      const patched = await fetch(url, {
        method: 'PATCH',
        headers: { ...TUS, ...auth, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
        body: bytes,
      });
      expect(patched.status).toBe(204);
      const id = url.slice(url.lastIndexOf('/') + 1);
      expect(sha256(await readFile(join(dataDir, id)))).toBe(sha256(bytes));
    } finally {
      const started = performance.now();
      expect(await server.kill('SIGTERM')).toBe(0);
      expect(performance.now() - started).toBeLessThan(Number(s.get('TimeoutStopSec')![0]) * 1000);
    }
  }, 120_000);
});

describe('Cloudflare Workers', () => {
  test("wrangler.toml: the Worker entry, the cleanup cron, and [vars] that are settings, not secrets nor one provider's", async () => {
    const toml = Bun.TOML.parse(await readFile(join(ROOT, 'wrangler.toml'), 'utf8')) as {
      main: string;
      triggers: { crons: string[] };
      vars: Record<string, string>;
    };
    expect(toml.main).toBe('src/runtime/worker.ts');
    expect(toml.triggers.crons.length).toBe(1);
    for (const name of Object.keys(toml.vars)) {
      expect(VARIABLES).toContain(name);
      expect(isSecretName(name)).toBe(false);
    }
    // "auto" is R2's region only: on AWS it breaks every signature. The README says what to set.
    expect(Object.keys(toml.vars)).not.toContain('S3_REGION');
    expect(Object.keys(toml.vars)).not.toContain('S3_ENDPOINT');
  });

  test('the README puts every secret variable the Worker reads, and only those', async () => {
    const section = await deploying();
    const put = [...section.matchAll(/wrangler secret put (\w+)/g)].map((m) => m[1]!);
    // Secret by the server's own rule (what it hides in messages), less the key prefixes (named
    // *_KEY_PREFIX, not secrets) and the AWS_* spellings of the S3 credentials (named instead).
    const secret = VARIABLES.filter((name) => isSecretName(name) && !name.endsWith('_PREFIX') && !name.startsWith('AWS_'));
    expect(put.toSorted()).toEqual(secret.toSorted());
    expect(secret).toContain('UPSTASH_REDIS_REST_TOKEN');
  });

  test("the Worker serves with the README's [vars] and required secrets, and not without any one of them", async () => {
    const section = await deploying();
    const fileVars = (Bun.TOML.parse(await readFile(join(ROOT, 'wrangler.toml'), 'utf8')) as { vars: Record<string, string> }).vars;
    const readmeVars = (Bun.TOML.parse(/```toml\n([\s\S]*?)```/.exec(section)![1]!.replace(/^ {3}/gm, '')) as { vars: Record<string, string> }).vars;
    const block = /```sh\n(\s*npx wrangler secret put[\s\S]*?)```/.exec(section)![1]!;
    const [required, optional] = block.split('# only those you use').map((part) => [...part.matchAll(/wrangler secret put (\w+)/g)].map((m) => m[1]!));
    expect(required!.length).toBeGreaterThan(0);
    // Loopback stand-ins for the URLs: serving the page reaches neither S3 nor Upstash.
    const bindings: Record<string, string> = { ...fileVars, ...readmeVars, S3_ENDPOINT: 'http://127.0.0.1:9', UPSTASH_REDIS_REST_URL: 'http://127.0.0.1:9' };
    for (const name of required!) bindings[name] = `value-of-${name}`;
    const page = (b: Record<string, string>) => worker.fetch(new Request('http://127.0.0.1/'), b, { waitUntil: () => {} });

    const served = await page(bindings);
    expect(served.status).toBe(200);
    expect(served.headers.get('Content-Type')).toBe('text/html; charset=utf-8');
    for (const name of ['S3_BUCKET', 'UPSTASH_REDIS_REST_URL', ...required!]) {
      const { [name]: _, ...without } = bindings;
      const res = await page(without);
      expect(res.status).toBeGreaterThanOrEqual(500);
      // Which setting is missing is for the Worker's log, not for whoever asks.
      const body = await res.text();
      expect(body).toBe('the server is misconfigured\n');
      expect(body).not.toContain(name);
    }
    // Each optional one is taken as it is (AUTH_TOKEN and JWT_SECRET exclude each other).
    expect(optional!.length).toBeGreaterThan(0);
    for (const name of optional!) expect((await page({ ...bindings, [name]: `value-of-${name}` })).status).toBe(200);
  });
});

test('Deno Deploy: the Deno entry serves from S3 and Upstash with no write access to the disk', async () => {
  const [s3, upstash] = await Promise.all([startS3(), startUpstashBridge()]);
  const bucket = await s3.newBucket();
  const nowhere = join(await tempDir('deno-deploy'), 'never-made');
  const server = await spawnServer(
    {
      // The variables the README's Deno Deploy steps set.
      S3_BUCKET: bucket,
      S3_REGION: s3.region,
      S3_ENDPOINT: s3.endpoint,
      S3_ACCESS_KEY_ID: s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      UPSTASH_REDIS_REST_URL: upstash.url,
      UPSTASH_REDIS_REST_TOKEN: upstash.token,
      STATE_KEY_PREFIX: `deploy-test:${crypto.randomUUID().slice(0, 8)}:`,
      DATA_DIR: nowhere,
    },
    // Deploy grants what it grants; writing files is not among what this entry may need there.
    [`${ROOT}node_modules/.bin/deno`, 'run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', 'src/runtime/deno.ts'],
  );
  try {
    const bytes = randomBytes(MiB_6);
    const created = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(bytes.length) } });
    expect(created.status).toBe(201);
    const url = created.headers.get('Location')!;
    const patched = await fetch(url, { method: 'PATCH', headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: bytes });
    expect(patched.status).toBe(204);
    expect(sha256(await s3.object(bucket, url.slice(url.lastIndexOf('/') + 1)))).toBe(sha256(bytes));
    // The records went to Upstash (through the bridge), not to files.
    expect([...upstash.commands.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(existsSync(nowhere)).toBe(false);
    expect(await readdir(join(nowhere, '..'))).toEqual([]);
  } finally {
    await server.kill('SIGKILL');
    await upstash.stop();
  }
}, 180_000);

/** More than one 5 MiB part, so that a multipart upload is completed. */
const MiB_6 = 6 * 1024 * 1024;
