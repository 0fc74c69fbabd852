/**
 * The `tusflow` command, on the runtime that launched it (bin/tusflow.js: Node or Bun):
 *
 *   tusflow [serve] [--flags]    the server: the Bun entry on Bun (as `npm start`), the Node entry on Node
 *   tusflow cleanup [--flags]    removes expired uploads once and prints how many
 *   tusflow s3-cors [--origin o] [--apply] [--flags]   shows (and applies) the bucket CORS rule of direct uploads
 *
 * Every environment variable of envSchema is also a flag: `--data-dir x` sets DATA_DIR, flags win
 * over the environment. Names and defaults come from envSchema; only the one-line meanings are kept
 * here (zod's doc comments do not exist at run time), and a test checks they cover every variable.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { envSchema } from '../wiring/config.ts';
import { errorText } from '../observability/redact.ts';

type EnvName = keyof z.input<typeof envSchema>;

/** One line per variable; `satisfies` (and tests/cli) keep it in step with envSchema. */
export const DESCRIPTIONS = {
  PORT: 'port to listen on',
  HOST: 'address to listen on',
  DATA_DIR: 'the embedded store: bytes (<id>) and records (<id>.json)',
  MAX_SIZE: 'largest upload (1GiB, 500MB or bytes), advertised as Tus-Max-Size (unset: unlimited)',
  UPLOAD_TTL_SECONDS: 'an unfinished upload expires this long after its last write',
  BODY_IDLE_TIMEOUT_SECONDS: 'a PATCH whose body brings no byte for this long ends there, keeping what arrived',
  CONNECTION_IDLE_TIMEOUT_SECONDS: 'Bun, Node: a connection silent this long outside a body (headers, keep-alive) is closed',
  CORS_ORIGINS: 'comma-separated origins allowed from browsers',
  CORS_CREDENTIALS: 'allow cookies and HTTP auth from the CORS_ORIGINS (which must list origins)',
  TRUST_PROXY: 'build upload URLs from Forwarded / X-Forwarded-Host, -Proto, -Port, -Prefix; client address from X-Forwarded-For',
  RELATIVE_LOCATION: 'upload URLs as paths (/files/<id>), for proxies that rewrite Host',
  CLEANUP_INTERVAL_SECONDS: 'how often expired uploads are removed',
  TUS_PATH: "the tus endpoint; an upload's URL is <TUS_PATH>/<id>",
  S3_BUCKET: 'store bytes in this bucket instead of DATA_DIR',
  S3_ENDPOINT: 'e.g. https://<account>.r2.cloudflarestorage.com (unset: AWS)',
  S3_REGION: 'signing region (auto for R2)',
  S3_ACCESS_KEY_ID: 'credentials (unset: AWS_ACCESS_KEY_ID)',
  S3_SECRET_ACCESS_KEY: 'credentials (unset: AWS_SECRET_ACCESS_KEY)',
  AWS_ACCESS_KEY_ID: 'used when S3_ACCESS_KEY_ID is unset',
  AWS_SECRET_ACCESS_KEY: 'used when S3_SECRET_ACCESS_KEY is unset',
  S3_SESSION_TOKEN: 'for temporary credentials',
  S3_FORCE_PATH_STYLE: 'endpoint/bucket/key addressing (MinIO, Ceph); unset: on for IP and localhost endpoints',
  S3_KEY_PREFIX: 'the finished object is <prefix><id>',
  S3_PART_SIZE: 'part size (8MiB or bytes); grown per upload so it fits 10,000 parts',
  S3_PARALLEL_PARTS: 'parts in flight per PATCH',
  S3_BUFFER_MEMORY: 'part buffers for all uploads together (256MiB or bytes); PATCHes wait past it',
  S3_DIRECT: "also serve Companion's /s3/multipart API: browsers send the bytes straight to S3 (Uppy's AwsS3 plugin)",
  S3_CHECKSUM: 'what each part declares about its bytes so S3 refuses changed ones: sha256, md5, crc32c, crc64nvme or off',
  S3_CACHE_CONTROL: 'Cache-Control stored with each finished object',
  S3_STORAGE_CLASS: 'storage class of each finished object, e.g. STANDARD_IA',
  S3_METADATA: 'user metadata of each finished object: name=value,... or a JSON object',
  S3_DOWNLOAD_REDIRECT: 'GET of a finished upload answers 307 to a presigned S3 URL (its bytes bypass the server)',
  S3_DOWNLOAD_REDIRECT_SECONDS: 'how long that presigned URL is valid (1 to 604800)',
  UPSTASH_REDIS_REST_URL: 'records and locks in Upstash (with UPSTASH_REDIS_REST_TOKEN)',
  UPSTASH_REDIS_REST_TOKEN: 'the Upstash REST token',
  REDIS_URL: 'records and locks in Redis over TCP, e.g. redis://127.0.0.1:6379/0',
  STATE_KEY_PREFIX: 'prefix of every Redis key',
  LOCK_LEASE_MS: 'a crashed instance blocks its uploads at most this long',
  FINISHED_TTL_SECONDS: "how long Redis keeps a finished upload's record",
  AUTH_TOKEN: 'a static bearer token every tus request must carry',
  JWT_SECRET: 'HS256 secret: requests carry a JWT whose sub owns the uploads it creates (not with AUTH_TOKEN)',
  JWT_AUDIENCE: 'a JWT must name this aud (unset: any)',
  JWT_ISSUER: 'a JWT must name this iss (unset: any)',
  JWT_REQUIRE_EXP: 'refuse JWTs without exp',
  METRICS_TOKEN: 'GET /metrics needs this bearer token (unset: open)',
  RATE_LIMIT: 'requests per minute per client (unset: no limit)',
  ALLOWED_TYPES: 'comma-separated MIME types accepted (image/* allowed); empty: all',
  ALLOWED_EXTENSIONS: 'comma-separated file extensions accepted; empty: all',
  HOOKS_URL: 'every upload event is also POSTed to this URL',
  HOOKS_SECRET: 'signs the events POSTed to HOOKS_URL',
  LOG: 'a JSON line per request on the console',
} satisfies Record<EnvName, string>;

export interface Variable {
  name: EnvName;
  flag: string;
  /** The default as text, or undefined when the variable is unset by default. */
  defaultText: string | undefined;
  /** true/false variables: the flag may be given alone. */
  boolean: boolean;
  description: string;
}

export const flagName = (name: string) => `--${name.toLowerCase().replaceAll('_', '-')}`;

/** Every variable of envSchema, in its order, with the default the schema gives it. */
export function variables(): Variable[] {
  return (Object.keys(envSchema.shape) as EnvName[]).map((name) => {
    const parsed = envSchema.shape[name].safeParse(undefined);
    const value: unknown = parsed.success ? parsed.data : undefined;
    const text = value === undefined ? undefined : Array.isArray(value) ? value.join(',') : String(value);
    return {
      name,
      flag: flagName(name),
      defaultText: text === '' ? '(empty)' : text,
      // A true/false variable, also one unset by default (S3_FORCE_PATH_STYLE).
      boolean: typeof value === 'boolean' || envSchema.shape[name].safeParse('true').data === true,
      description: (DESCRIPTIONS as Record<string, string | undefined>)[name] ?? '',
    };
  });
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const vars = variables();
  const rows = vars.map((v) => [v.flag, v.name, v.defaultText ?? '-', v.description]);
  const booleans = vars.filter((v) => v.boolean).map((v) => v.flag);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  const table = rows.map((row) => `  ${row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell)).join('  ')}`.trimEnd());
  return `tusflow ${version()}: resumable uploads (tus 1.0) to disk or S3

Usage:
  tusflow [serve] [flags]    start the server (same as npm start)
  tusflow cleanup [flags]    remove expired uploads once, print how many, exit
  tusflow s3-cors [--origin <origin>]... [--apply] [flags]
                             show the S3 bucket's CORS rules and the rule direct uploads (S3_DIRECT)
                             need for these origins (default CORS_ORIGINS); --apply sets it
  tusflow --help | --version

Every environment variable can be given as a flag: --data-dir ./up or --data-dir=./up sets
DATA_DIR. Flags override the environment; an empty value (--max-size=) unsets the variable.
${booleans.slice(0, -1).join(', ')}${booleans.length > 1 ? ' and ' : ''}${booleans.at(-1) ?? ''} may be given alone (= true) or with true/false.
A bad value stops tusflow with exit code 1, an unknown flag with exit code 2.

Flag, variable, default, meaning:
${table.join('\n')}
`;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Invocation {
  command: 'serve' | 'cleanup' | 's3-cors' | 'help' | 'version';
  /** Variables the flags set, to be laid over the environment. */
  env: Record<string, string>;
  /** s3-cors: the page origins (--origin, repeatable) and whether to apply the rule (--apply). */
  origins?: string[];
  apply?: boolean;
}

const COMMANDS = ['serve', 'cleanup', 's3-cors'] as const;
const BOOLEAN_VALUES = ['true', 'false', '1', '0'];

/** Reads the command line; throws a UsageError (exit 2) for anything it does not know. */
export function parseArgs(args: string[]): Invocation {
  const byFlag = new Map(variables().map((v) => [v.flag, v]));
  const env: Record<string, string> = {};
  let command: Invocation['command'] | undefined;
  let info: 'help' | 'version' | undefined;
  const origins: string[] = [];
  let apply = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--apply') apply = true;
    else if (arg === '--origin' || arg.startsWith('--origin=')) {
      const value = arg === '--origin' ? args[++i] : arg.slice('--origin='.length);
      if (!value || !/^https?:\/\/[^/\s]+$|^\*$/.test(value)) throw new UsageError(`--origin needs an origin such as https://app.example (got ${value ?? 'nothing'})`);
      origins.push(value);
    } else if (arg === '--help' || arg === '-h') info ??= 'help';
    else if (arg === '--version' || arg === '-v') info ??= 'version';
    else if (arg.startsWith('-')) {
      const eq = arg.indexOf('=');
      const flag = eq === -1 ? arg : arg.slice(0, eq);
      const variable = byFlag.get(flag);
      if (!variable) {
        const hint = closest(flag, [...byFlag.keys()]);
        throw new UsageError(`unknown flag ${flag}${hint ? ` (did you mean ${hint}?)` : ''}`);
      }
      let value: string;
      if (eq !== -1) value = arg.slice(eq + 1);
      else if (variable.boolean) value = BOOLEAN_VALUES.includes(args[i + 1] ?? '') ? args[++i]! : 'true';
      else if (i + 1 < args.length && !args[i + 1]!.startsWith('--')) value = args[++i]!;
      else throw new UsageError(`${flag} needs a value (it sets ${variable.name})`);
      env[variable.name] = value;
    } else if (command === undefined && (COMMANDS as readonly string[]).includes(arg)) {
      command = arg as (typeof COMMANDS)[number];
    } else if (command === undefined && arg === 'help') {
      info = 'help';
    } else {
      throw new UsageError(command === undefined ? `unknown command ${arg}` : `unexpected argument ${arg}`);
    }
  }
  if ((origins.length > 0 || apply) && command !== 's3-cors') throw new UsageError('--origin and --apply belong to the s3-cors command');
  const chosen = info ?? command ?? 'serve';
  return chosen === 's3-cors' ? { command: chosen, env, origins, apply } : { command: chosen, env };
}

function closest(flag: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3; // suggest only near misses
  for (const candidate of candidates) {
    const d = distance(flag, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

const onBun = typeof process.versions.bun === 'string';

/** Runs the command line; `serve` returns once the server listens (it keeps the process alive). */
export async function main(args: string[]): Promise<void> {
  let invocation: Invocation;
  try {
    invocation = parseArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`tusflow: ${error.message}\nRun tusflow --help for the flags.`);
    process.exit(2);
  }
  const { command, env, origins, apply } = invocation;
  if (command === 'help') {
    process.stdout.write(usage());
    return;
  }
  if (command === 'version') {
    console.log(version());
    return;
  }
  // Flags win over the environment (hooks and children see them too).
  Object.assign(process.env, env);
  if (command === 's3-cors') {
    const { s3Cors } = await import('../wiring/s3-cors.ts');
    await s3Cors(process.env, origins ?? [], apply === true, (line) => console.log(line)).catch((error: unknown) => {
      console.error(`tusflow s3-cors: ${errorText(error)}`);
      process.exit(1);
    });
    return;
  }
  if (command === 'serve') {
    // Each entry is loaded only on its runtime: the Bun entry needs Bun's globals.
    if (onBun) await (await import('./bun.ts')).serveOnBun(process.env);
    else await (await import('./node-server.ts')).serveOnNode(process.env);
    return;
  }
  const [{ createTusflow }, { exitOnConfigError, serverConfig }, features] = await Promise.all([
    import('../index.ts'),
    import('../wiring/server.ts'),
    onBun ? import('./bun-features.ts').then((m) => m.bunFeatures) : {},
  ]);
  const { options, description } = await serverConfig(process.env, features).catch(exitOnConfigError(process.exit));
  try {
    const removed = await createTusflow(options).engine.cleanup();
    console.log(`removed ${removed} expired upload${removed === 1 ? '' : 's'} (storage: ${description})`);
  } catch (error) {
    console.error(`tusflow: cleanup failed: ${errorText(error)}`);
    process.exit(1);
  }
  process.exit(0);
}

if (import.meta.main) await main(process.argv.slice(2));
