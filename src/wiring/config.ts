import { z } from 'zod';
import { pathSchema, type TusflowOptions } from '../http/options.ts';
import { redactVariable } from '../observability/redact.ts';
import { PAYLOAD_CHECKS } from '../storage/s3/integrity.ts';
import { parseMetadataSetting, STORAGE_CLASS } from '../storage/s3/object-settings.ts';

export { optionsSchema, type ResolvedOptions, type TusflowOptions } from '../http/options.ts';

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) => z.string().regex(/^\d+$/, 'expected a whole number').transform(Number).pipe(z.number().min(min).max(max));
const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
/**
 * whole.fraction × unit in integer arithmetic, as floating point gets 4.1 × 1e9 wrong
 * (4099999999.9999995); NaN unless the result is a whole number of bytes.
 */
function exactBytes(whole: string, fraction: string, unit: number): number {
  const scale = 10n ** BigInt(fraction.length);
  const scaled = BigInt(whole + fraction) * BigInt(unit);
  return scaled % scale === 0n ? Number(scaled / scale) : Number.NaN;
}
/** A size in bytes: plain bytes, or a number with KB/MB/GB/TB (1000s) or KiB/MiB/GiB/TiB (1024s), any case. */
const size = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .transform((v, ctx) => {
      const match = /^\s*(\d+)(?:\.(\d+))?\s*([a-z]*)\s*$/i.exec(v);
      const unit = match && UNITS[match[3]!.toLowerCase()];
      const bytes = match && unit ? exactBytes(match[1]!, match[2] ?? '', unit) : Number.NaN;
      if (!Number.isSafeInteger(bytes)) {
        ctx.addIssue({ code: 'custom', message: 'expected a size in bytes, e.g. 5242880, 500MB or 5MiB (KB, MB, GB: 1000s; KiB, MiB, GiB: 1024s)' });
        return z.NEVER;
      }
      return bytes;
    })
    .pipe(z.number().min(min).max(max));
const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const list = z.string().transform((v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

/** The environment contract of the server entries. */
export const envSchema = z.object({
  PORT: integer(0, 65_535).default(1080),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().default('./data'),
  MAX_SIZE: size(1).optional(),
  UPLOAD_TTL_SECONDS: integer(1).default(86_400),
  BODY_IDLE_TIMEOUT_SECONDS: integer(1).default(60),
  /**
   * Bun, Node: a connection that sends nothing for this long while no body streams (unfinished headers,
   * keep-alive between requests) is closed. A body's idle time is BODY_IDLE_TIMEOUT_SECONDS.
   */
  CONNECTION_IDLE_TIMEOUT_SECONDS: integer(1, 14_280).default(120),
  CORS_ORIGINS: list.default(['*']),
  /** Allow credentials (cookies, HTTP auth) on cross-origin requests: only with CORS_ORIGINS listing origins. */
  CORS_CREDENTIALS: flag.default(false),
  TRUST_PROXY: flag.default(false),
  /** Upload URLs as paths (`/files/<id>`), for proxies that rewrite the Host header. */
  RELATIVE_LOCATION: flag.default(false),
  /** How often the server removes expired uploads. */
  CLEANUP_INTERVAL_SECONDS: integer(1).default(300),
  TUS_PATH: pathSchema.default('/files'),

  // S3: set S3_BUCKET to store uploads in S3 instead of DATA_DIR.
  S3_BUCKET: z.string().min(3).optional(),
  /** e.g. http://127.0.0.1:9000 or https://<account>.r2.cloudflarestorage.com; default AWS. */
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  S3_SESSION_TOKEN: z.string().optional(),
  /** Unset: path style for IP-literal and localhost endpoints (which have no bucket subdomains), else virtual-host style. */
  S3_FORCE_PATH_STYLE: flag.optional(),
  S3_KEY_PREFIX: z
    .string()
    .regex(/^[^\\/][\w!\-.*'()/]*$|^$/, 'a key prefix such as uploads/')
    .default(''),
  S3_PART_SIZE: size(5 * 1024 * 1024, 5 * 1024 * 1024 * 1024).default(5 * 1024 * 1024),
  S3_PARALLEL_PARTS: integer(1, 64).default(4),
  S3_BUFFER_MEMORY: size(5 * 1024 * 1024).default(128 * 1024 * 1024),
  /** What each part and object declares about its bytes, for S3 to refuse changed ones (storage/s3/integrity.ts). */
  S3_CHECKSUM: z.enum(PAYLOAD_CHECKS).default('sha256'),
  /** Stored with the finished object (S3 serves them on download). */
  S3_CACHE_CONTROL: z
    .string()
    .regex(/^[\x20-\x7e]+$/, 'a Cache-Control value (visible ASCII)')
    .optional(),
  S3_STORAGE_CLASS: z.string().regex(STORAGE_CLASS, 'an S3 storage class such as STANDARD_IA').optional(),
  /** GET of a finished upload answers 307 to a presigned S3 URL valid S3_DOWNLOAD_REDIRECT_SECONDS: its bytes bypass the server. */
  S3_DOWNLOAD_REDIRECT: flag.default(false),
  S3_DOWNLOAD_REDIRECT_SECONDS: integer(1, 604_800).default(300),
  /** User metadata of the finished object: name=value,name=value or a JSON object of strings. */
  S3_METADATA: z
    .string()
    .transform((v, ctx) => {
      try {
        return parseMetadataSetting(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: `expected name=value,... or a JSON object of strings: ${(error as Error).message}` });
        return z.NEVER;
      }
    })
    .optional(),
  /** Also serve Companion's /s3/multipart API: browsers send the bytes straight to S3 with presigned URLs. */
  S3_DIRECT: flag.default(false),

  // Shared state and locks, so that several instances can serve the same uploads.
  /** Upstash's REST API (the names Upstash's own fromEnv reads). */
  UPSTASH_REDIS_REST_URL: z.url().optional(),
  UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
  /** Redis over TCP, e.g. redis://127.0.0.1:6379/0 (server runtimes only). */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
    .optional(),
  STATE_KEY_PREFIX: z.string().default('tusflow:'),
  /** A crashed instance blocks its uploads at most this long. */
  LOCK_LEASE_MS: integer(500, 600_000).default(10_000),
  /** How long a finished upload's record stays in Redis (S3 rebuilds it on demand afterwards). */
  FINISHED_TTL_SECONDS: integer(1).default(7 * 86_400),

  // Users of the server.
  AUTH_TOKEN: z.string().min(1).optional(),
  JWT_SECRET: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_REQUIRE_EXP: flag.default(true),
  METRICS_TOKEN: z.string().min(1).optional(),
  RATE_LIMIT: integer(1).optional(),
  ALLOWED_TYPES: list.default([]),
  ALLOWED_EXTENSIONS: list.default([]),
  HOOKS_URL: z.url().optional(),
  HOOKS_SECRET: z.string().min(1).optional(),
  LOG: flag.default(true),
});

export type ServerEnv = z.output<typeof envSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The AUTH_TOKEN of deploy/tusflow.env, refused so that a copy of it is never served as is. */
const AUTH_TOKEN_PLACEHOLDER = 'change-me-to-a-long-random-token';

/** Reads the environment; a bad value throws a ConfigError naming the variable and what it expected. */
export function parseEnv(env: Record<string, string | undefined>): ServerEnv {
  // An empty variable means "not set", as in most shells' `VAR= command`.
  const set = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const result = envSchema.safeParse(set);
  if (result.success) {
    const e = result.data;
    if (e.S3_BUCKET && !(e.S3_ACCESS_KEY_ID ?? e.AWS_ACCESS_KEY_ID) !== !(e.S3_SECRET_ACCESS_KEY ?? e.AWS_SECRET_ACCESS_KEY)) {
      throw new ConfigError('invalid configuration: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither');
    }
    if (e.S3_BUCKET && e.S3_BUFFER_MEMORY < e.S3_PART_SIZE * e.S3_PARALLEL_PARTS) {
      // Not enough buffers for the parts in flight: uploads would silently send fewer at once.
      throw new ConfigError(
        `invalid configuration: S3_BUFFER_MEMORY=${e.S3_BUFFER_MEMORY}: must hold S3_PARALLEL_PARTS × S3_PART_SIZE = ${e.S3_PART_SIZE * e.S3_PARALLEL_PARTS} bytes; raise it or lower those`,
      );
    }
    if (e.S3_DIRECT && !e.S3_BUCKET) throw new ConfigError('invalid configuration: S3_DIRECT=true needs S3_BUCKET: only S3 takes uploads straight from clients');
    if (e.AUTH_TOKEN === AUTH_TOKEN_PLACEHOLDER) {
      // deploy/tusflow.env's example value: a token everyone who read the file knows.
      throw new ConfigError(`invalid configuration: AUTH_TOKEN is the example value "${AUTH_TOKEN_PLACEHOLDER}"; set a long random token`);
    }
    if (e.AUTH_TOKEN && e.JWT_SECRET) {
      throw new ConfigError('invalid configuration: AUTH_TOKEN and JWT_SECRET: set one, not both (a request carries one bearer token)');
    }
    if (e.CORS_CREDENTIALS && e.CORS_ORIGINS.includes('*')) {
      // Browsers refuse credentials from a server that allows any origin.
      throw new ConfigError('invalid configuration: CORS_CREDENTIALS=true needs CORS_ORIGINS to list the allowed origins (not *)');
    }
    if (!e.UPSTASH_REDIS_REST_URL !== !e.UPSTASH_REDIS_REST_TOKEN) {
      throw new ConfigError('invalid configuration: UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN: set both or neither');
    }
    return e;
  }
  const lines = result.error.issues.map((issue) => {
    const name = String(issue.path[0]);
    // The refused value is quoted to help, but never a secret: it may be a token or hold a password.
    return `${name}=${JSON.stringify(redactVariable(name, env[name] ?? ''))}: ${issue.message}`;
  });
  // One line, so that a log collector keeps the whole reason together.
  throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
}

/** Settings that are valid but have no effect as combined: worth a warning at start, not a refusal. */
export function configWarnings(env: ServerEnv): string[] {
  const warnings: string[] = [];
  if (!env.S3_BUCKET) {
    const ignored = (['S3_ENDPOINT', 'S3_KEY_PREFIX', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY'] as const).filter((name) => env[name]);
    if (ignored.length) warnings.push(`${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} ignored without S3_BUCKET: uploads are stored under DATA_DIR`);
  }
  if (env.UPSTASH_REDIS_REST_URL && env.REDIS_URL) warnings.push('REDIS_URL is ignored: UPSTASH_REDIS_REST_URL is set too, and records and locks go to Upstash');
  return warnings;
}

/** The createTusflow options the environment describes (stores are chosen by the runtime entry). */
export function fromEnv(env: Record<string, string | undefined>): TusflowOptions {
  const e = parseEnv(env);
  return {
    path: e.TUS_PATH,
    maxSize: e.MAX_SIZE,
    uploadTtlSeconds: e.UPLOAD_TTL_SECONDS,
    bodyIdleTimeoutSeconds: e.BODY_IDLE_TIMEOUT_SECONDS,
    corsOrigins: e.CORS_ORIGINS,
    corsCredentials: e.CORS_CREDENTIALS,
    trustProxy: e.TRUST_PROXY,
    relativeLocation: e.RELATIVE_LOCATION,
    authToken: e.AUTH_TOKEN,
    jwtSecret: e.JWT_SECRET,
    jwtAudience: e.JWT_AUDIENCE,
    jwtIssuer: e.JWT_ISSUER,
    jwtRequireExp: e.JWT_REQUIRE_EXP,
    metricsToken: e.METRICS_TOKEN,
    rateLimit: e.RATE_LIMIT,
    allowedTypes: e.ALLOWED_TYPES,
    allowedExtensions: e.ALLOWED_EXTENSIONS,
    s3Direct: e.S3_DIRECT,
    hooksUrl: e.HOOKS_URL,
    hooksSecret: e.HOOKS_SECRET,
    log: e.LOG,
    // A server of its own: the upload page, /health and /metrics, which embedders opt into.
    webPage: true,
    health: true,
    metrics: true,
  };
}
