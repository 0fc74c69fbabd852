import { z } from 'zod';

/** How a request looked where the client sent it, as the reverse proxy in front reports it. */
export interface PublicOrigin {
  proto?: 'http' | 'https';
  /** A host name, IPv4 address or bracketed IPv6 address, without port. */
  hostname?: string;
  /** The port the client connected to; '' means the scheme's default. */
  port?: string;
  /** The path the proxy removed before passing the request on, e.g. `/uploads`; never ends in `/`. */
  prefix?: string;
}

const proto = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['http', 'https']));
const port = z
  .string()
  .regex(/^\d{1,5}$/)
  .transform(Number)
  .pipe(z.number().int().min(1).max(65_535))
  .transform(String);
/** RFC 3986 host (reg-name, IPv4 or [IPv6]) with an optional port: nothing that could smuggle a path or userinfo in. */
const hostWithPort = z
  .string()
  .regex(/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/)
  .transform((v) => {
    const at = v.lastIndexOf(':');
    return at > v.lastIndexOf(']') ? { hostname: v.slice(0, at), port: v.slice(at + 1) } : { hostname: v, port: undefined };
  })
  .refine((v) => v.port === undefined || port.safeParse(v.port).success);
/**
 * Path segments of unreserved characters only, no `.` or `..`: the prefix ends up in Location
 * headers and in the page's HTML.
 */
const prefix = z
  .string()
  .regex(/^(?:\/(?!\.{1,2}(?:\/|$))[\w.~-]+)*\/?$/)
  .transform((v) => v.replace(/\/$/, ''));

/**
 * The most header text looked at: what a proxy writes is far shorter, and a longer value is a client's
 * (never parsed, so it costs nothing). Past it, the header is ignored as if absent.
 */
export const MAX_FORWARDED_LENGTH = 1024;

function header(headers: Headers, name: string): string | undefined {
  const value = headers.get(name);
  return value === null || value.length > MAX_FORWARDED_LENGTH ? undefined : value;
}

/** The last element of a comma-separated header: the one the nearest proxy (the trusted one) added. */
function last(headers: Headers, name: string): string | undefined {
  const value = header(headers, name)?.split(',').at(-1)?.trim();
  return value || undefined;
}

function parse<T>(schema: z.ZodType<T, string>, value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

/**
 * The parameters of the last element of an RFC 7239 `Forwarded` header (lower-cased names, quotes
 * removed). A comma or semicolon inside a quoted value splits nothing. One pass over the text.
 */
export function lastForwardedElement(header: string): Map<string, string> {
  let pairs: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const ch = header[i]!;
    if (quoted && ch === '\\') {
      current += ch + (header[++i] ?? '');
      continue;
    }
    if (ch === '"') quoted = !quoted;
    if (quoted || (ch !== ',' && ch !== ';')) current += ch;
    else {
      pairs.push(current);
      current = '';
      // A new element: only the last one's parameters count.
      if (ch === ',') pairs = [];
    }
  }
  pairs.push(current);
  const params = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    let value = pair.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    params.set(pair.slice(0, eq).trim().toLowerCase(), value);
  }
  return params;
}

/** The last `Forwarded` element's parameters; none when the header is absent or too long. */
function forwardedParams(headers: Headers): Map<string, string> {
  const value = header(headers, 'Forwarded');
  return value === undefined ? new Map() : lastForwardedElement(value);
}

/**
 * An RFC 7239 node: an IPv4 address or a bracketed IPv6 one, with an optional port, to the bare
 * address (as a connection's remoteAddress reads). `unknown` and obfuscated names (`_hidden`) are no
 * address.
 */
const node = z
  .string()
  .regex(/^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/)
  .transform((v) => (v.startsWith('[') ? v.slice(1, v.indexOf(']')) : v.replace(/:\d+$/, '')));

/**
 * The client's address as the trusted proxy reports it: `for=` of the last `Forwarded` element, else
 * the last X-Forwarded-For entry (the ones before it come from the client and can say anything).
 * A `for=` the proxy wrote but that names no address (`unknown`, obfuscated) says the proxy hides the
 * client: then no X-Forwarded-For, which the client may have sent itself, is read either.
 */
export function forwardedFor(headers: Headers): string | undefined {
  const forwarded = forwardedParams(headers).get('for');
  if (forwarded !== undefined) return parse(node, forwarded);
  return headers.get('X-Forwarded-For')?.split(',').at(-1)?.trim() || undefined;
}

/** Per request: the public URL is needed several times (Location, hooks, the log, the page). */
const origins = new WeakMap<Headers, PublicOrigin>();

/**
 * What the proxy says about the public URL: RFC 7239 `Forwarded` (host with its port, proto) first,
 * then X-Forwarded-Host/-Proto/-Port/-Prefix. Of several entries the last counts, as for
 * X-Forwarded-For. A malformed or overlong value is ignored as if absent. Call it only when the
 * proxy is trusted: a client can send any of these headers itself.
 */
export function publicOrigin(headers: Headers): PublicOrigin {
  const known = origins.get(headers);
  if (known) return { ...known };
  const forwarded = forwardedParams(headers);
  const forwardedHost = parse(hostWithPort, forwarded.get('host'));
  const host = forwardedHost ?? parse(hostWithPort, last(headers, 'X-Forwarded-Host'));
  const origin: PublicOrigin = {
    proto: parse(proto, forwarded.get('proto')) ?? parse(proto, last(headers, 'X-Forwarded-Proto')),
    hostname: host?.hostname,
    port:
      (forwardedHost?.port !== undefined ? parse(port, forwardedHost.port) : undefined) ??
      parse(port, last(headers, 'X-Forwarded-Port')) ??
      (host ? parse(port, host.port) : undefined),
    prefix: parse(prefix, last(headers, 'X-Forwarded-Prefix')),
  };
  // A forwarded host without a port is on the public scheme's default port, not on this server's.
  if (host && origin.port === undefined) origin.port = '';
  origins.set(headers, origin);
  return { ...origin };
}

/**
 * The request's URL as the client addressed it: behind a trusted proxy with the public scheme, host,
 * port and path prefix the proxy reports.
 */
export function publicUrl(request: Request, trustProxy: boolean): URL {
  const url = new URL(request.url);
  if (!trustProxy) return url;
  const origin = publicOrigin(request.headers);
  if (origin.proto) url.protocol = `${origin.proto}:`;
  if (origin.hostname) url.hostname = origin.hostname;
  if (origin.port !== undefined) url.port = origin.port;
  if (origin.prefix) url.pathname = origin.prefix + url.pathname;
  return url;
}
