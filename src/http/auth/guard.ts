import type { RateLimiter } from '../../state/types.ts';
import { TUS_VERSION } from '../../protocol/constants.ts';
import { TusError } from '../../model/errors.ts';
import { errorResponse } from '../../protocol/respond.ts';
import type { Authenticate, Identity } from './authenticate.ts';
import { shortHash } from './credentials.ts';
import { forwardedFor } from '../forwarded.ts';

/** What the server entries tell the app about the connection. */
export interface ConnectionInfo {
  remoteAddress?: string;
}

/** A request let through: the method it runs as, and who sent it. */
interface Admitted extends Identity {
  method: string;
}

interface GuardOptions {
  authenticate?: Authenticate;
  rateLimiter?: RateLimiter;
  trustProxy: boolean;
}

/**
 * The method a tus request runs as: X-HTTP-Method-Override when present (the tus spec says it MUST
 * be honoured), else the request's own. Decided once, before any guard, so that every guard sees
 * the method that is actually executed: an OPTIONS carrying `override: GET` is a GET.
 */
function effectiveMethod(request: Request): string {
  // An empty override is none, as the CORS preflight check sees it.
  return (request.headers.get('X-HTTP-Method-Override')?.trim() || request.method).toUpperCase();
}

/**
 * The guards every tus request passes, in this order: the method is decided; the credential is
 * checked (discovery, an OPTIONS, needs none: it tells nothing about any upload); the request is
 * counted against its client's rate limit — refused credentials included, so guessing costs too;
 * then a refused credential is answered. Resolves with the admitted request or the answer.
 */
export function requestGuard(o: GuardOptions) {
  return async (request: Request, connection: ConnectionInfo | undefined): Promise<Admitted | Response> => {
    const method = effectiveMethod(request);
    let identity: Identity | Response = {};
    let refused: unknown;
    if (o.authenticate && method !== 'OPTIONS') {
      try {
        identity = await o.authenticate(request, method);
      } catch (error) {
        if (!(error instanceof TusError)) throw error;
        refused = error;
      }
    }
    if (o.rateLimiter) {
      const owner = identity instanceof Response ? undefined : identity.owner;
      const key = await rateLimitKey(owner, clientAddress(request, connection, o.trustProxy));
      const { allowed, retryAfterSeconds } = await o.rateLimiter.hit(key);
      if (!allowed) return errorResponse(new TusError('RATE_LIMITED'), { 'Retry-After': String(retryAfterSeconds), 'Tus-Resumable': TUS_VERSION });
    }
    if (refused) throw refused;
    return identity instanceof Response ? identity : { ...identity, method };
  };
}

/**
 * A client's rate-limit key, short whatever it is made of: a user's by their identity (the same
 * user behind several addresses shares one budget), anyone else's by their address. The header
 * itself is never a key: `bearer x`, `Bearer  x` and a thousand wrong tokens are one client.
 */
async function rateLimitKey(owner: string | undefined, address: string | undefined): Promise<string> {
  return owner !== undefined ? `u:${await shortHash(owner)}` : `a:${await shortHash(address ?? 'unknown')}`;
}

/**
 * The client's address: the connection's, or behind a trusted proxy the one that proxy reports
 * (`Forwarded: for=`, else the last X-Forwarded-For entry; see forwardedFor).
 */
export function clientAddress(request: Request, connection: ConnectionInfo | undefined, trustProxy: boolean): string | undefined {
  return (trustProxy ? forwardedFor(request.headers) : undefined) ?? connection?.remoteAddress;
}
