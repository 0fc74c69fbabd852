import type { MiddlewareHandler } from 'hono';
import { EXPOSED_HEADERS, METHODS, REQUEST_HEADERS } from '../protocol/constants.ts';

/**
 * CORS for browser clients. Written here rather than taken from hono/cors because that middleware
 * answers every OPTIONS itself, and tus discovery (an OPTIONS without a preflight's
 * Access-Control-Request-Method) must reach the tus handler.
 */
export function cors(origins: string[], credentials = false): MiddlewareHandler {
  const any = origins.includes('*');
  // Options refuse credentials with `*`; a browser would refuse them too.
  const withCredentials: Record<string, string> = credentials && !any ? { 'Access-Control-Allow-Credentials': 'true' } : {};
  return async (c, next) => {
    const origin = c.req.header('Origin');
    const allowed = origin !== undefined && (any || origins.includes(origin));
    // A preflight carries no method override: an OPTIONS that does is the request it overrides to,
    // and goes on to the guards like any other.
    const preflight = c.req.method === 'OPTIONS' && c.req.header('Access-Control-Request-Method') && !c.req.header('X-HTTP-Method-Override');
    if (allowed && preflight) {
      return new Response(null, {
        status: 204,
        headers: {
          'Access-Control-Allow-Origin': any ? '*' : origin,
          'Access-Control-Allow-Methods': METHODS.join(', '),
          'Access-Control-Allow-Headers': c.req.header('Access-Control-Request-Headers') ?? REQUEST_HEADERS.join(', '),
          'Access-Control-Max-Age': '86400',
          ...withCredentials,
          Vary: 'Origin, Access-Control-Request-Headers',
        },
      });
    }
    await next();
    // The answer depends on the Origin whether or not it was allowed: caches must key on it.
    if (!any) c.res.headers.append('Vary', 'Origin');
    if (!allowed) return;
    c.res.headers.set('Access-Control-Allow-Origin', any ? '*' : origin);
    c.res.headers.set('Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', '));
    for (const [name, value] of Object.entries(withCredentials)) c.res.headers.set(name, value);
  };
}
