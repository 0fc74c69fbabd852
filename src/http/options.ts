import { z } from 'zod';
import type { Hooks } from '../hooks/types.ts';
import { MetricsRegistry } from '../observability/metrics.ts';
import type { Logger } from '../observability/log.ts';
import type { Locker, RateLimiter, StateStore } from '../state/types.ts';
import type { DataStore } from '../storage/types.ts';

const hasMethods =
  (...names: string[]) =>
  (value: unknown) =>
    typeof value === 'object' && value !== null && names.every((n) => typeof (value as Record<string, unknown>)[n] === 'function');

export const pathSchema = z.string().regex(/^(\/[\w.~-]+)*$/, 'a path such as /files, without a trailing slash');

/** Options of createTusflow. Every field has a default, so `createTusflow()` is a working server. */
export const optionsSchema = z
  .object({
    /** Where the tus endpoint lives inside the app; upload URLs are `<path>/<id>`. */
    path: pathSchema.default('/files'),
    /** Largest upload accepted, in bytes (advertised as Tus-Max-Size). */
    maxSize: z.number().int().positive().optional(),
    /** An unfinished upload expires this long after its last write. */
    uploadTtlSeconds: z.number().int().positive().default(86_400),
    /** Origins allowed to call from a browser; `*` allows any. */
    corsOrigins: z.array(z.string().min(1)).min(1).default(['*']),
    /**
     * Answer cross-origin requests with credentials (cookies, HTTP auth) allowed. Only with
     * `corsOrigins` listing origins: a browser refuses credentials with `*`.
     */
    corsCredentials: z.boolean().default(false),
    /**
     * Behind a proxy: build upload URLs from `Forwarded` / X-Forwarded-Host, -Proto, -Port and
     * -Prefix, and take the client's address from the last X-Forwarded-For entry.
     */
    trustProxy: z.boolean().default(false),
    /**
     * Upload URLs (Location, Upload-Concat) as paths without scheme and host, which clients resolve
     * against the URL they used: for proxies that rewrite the Host header.
     */
    relativeLocation: z.boolean().default(false),
    /**
     * Serve the upload page at `/`. Off by default, like `health` and `metrics`: mounted in an app,
     * tusflow adds only its tus routes; the server entries turn all three on.
     */
    webPage: z.boolean().default(false),
    /** How long a request waits for a busy upload's current writer to let go. */
    lockTimeoutMs: z.number().int().positive().default(10_000),
    /**
     * A PATCH whose body brings no byte for this long ends there, as if its client had gone (what
     * arrived is kept), so a stalled client does not hold its upload and server memory forever.
     */
    bodyIdleTimeoutSeconds: z.number().positive().default(60),
    /** Lifecycle hooks in this process (see README "Hooks"). */
    hooks: z.custom<Hooks>((v) => typeof v === 'object' && v !== null, 'an object of hook functions').optional(),
    /** Every event also POSTed, signed with `hooksSecret`, to this URL. */
    hooksUrl: z.url().optional(),
    hooksSecret: z.string().min(1).optional(),
    /** A static bearer token every tus request must carry. */
    authToken: z.string().min(1).optional(),
    /** HS256 secret: requests carry a JWT; its `sub` owns the uploads it creates. Not with `authToken`. */
    jwtSecret: z.string().min(1).optional(),
    /** A JWT must name this audience (`aud`) and this issuer (`iss`), when set. */
    jwtAudience: z.string().min(1).optional(),
    jwtIssuer: z.string().min(1).optional(),
    /** A JWT without `exp` is refused: a token that never expires is a credential that is never revoked. */
    jwtRequireExp: z.boolean().default(true),
    /**
     * Your own check, run before every tus request (after `authToken`/`jwtSecret`, when set): resolve
     * with the owner (or `{}`) to let it through, `undefined` to answer 401, or a Response to answer
     * that. `method` is the method the request will run as (X-HTTP-Method-Override applied).
     */
    authorize: z
      .custom<(request: Request, info: { method: string }) => Promise<{ owner?: string } | Response | undefined>>((v) => typeof v === 'function', 'a function')
      .optional(),
    /** Requests per minute per client (its owner when authenticated, else its address). */
    rateLimit: z.number().int().positive().optional(),
    rateLimiter: z.custom<RateLimiter>(hasMethods('hit'), 'a RateLimiter').optional(),
    /** MIME types (`image/*` allowed) and file extensions accepted, from the metadata; empty: all. */
    /**
     * The whole-upload digest (RFC 9530) computed for every upload, as Want-Repr-Digest asks for one:
     * given to the post-finish hook and kept on the record. A request's own Repr-Digest or
     * Want-Repr-Digest comes first.
     */
    uploadDigest: z.enum(['sha-256', 'sha-512']).optional(),
    allowedTypes: z.array(z.string().min(1)).default([]),
    allowedExtensions: z.array(z.string().min(1)).default([]),
    /**
     * Serve Companion's `/s3/multipart` API (Uppy's AwsS3 plugin): clients send the bytes straight
     * to S3 with URLs the server signs. Needs a store that signs them (S3).
     */
    s3Direct: z.boolean().default(false),
    /** `GET /health` and `GET /metrics` (open unless `metricsToken` is set); off by default, see `webPage`. */
    health: z.boolean().default(false),
    metrics: z.boolean().default(false),
    /** Where this server's metrics go (default: a registry of its own); pass one to share it with stores. */
    registry: z.instanceof(MetricsRegistry).optional(),
    /** When set, `GET /metrics` needs `Authorization: Bearer <metricsToken>`. */
    metricsToken: z.string().min(1).optional(),
    /** A JSON line per request: true for the console, or your own logger. */
    log: z.union([z.boolean(), z.custom<Logger>((v) => typeof v === 'function')]).default(false),
    store: z.custom<DataStore>(hasMethods('create', 'write', 'finish', 'read', 'remove'), 'a DataStore').optional(),
    state: z.custom<StateStore>(hasMethods('get', 'put', 'update', 'delete', 'expired', 'claimKey', 'releaseKey'), 'a StateStore').optional(),
    locker: z.custom<Locker>(hasMethods('acquire'), 'a Locker').optional(),
  })
  .refine((o) => !o.corsCredentials || !o.corsOrigins.includes('*'), {
    message: 'corsCredentials needs corsOrigins to list the allowed origins (not *)',
    path: ['corsCredentials'],
  })
  .refine((o) => !(o.authToken && o.jwtSecret), {
    // Two credentials for one header: every request would fail one of them.
    message: 'authToken and jwtSecret cannot both be set: choose one',
    path: ['authToken'],
  });

export type TusflowOptions = z.input<typeof optionsSchema>;
export type ResolvedOptions = z.output<typeof optionsSchema>;
