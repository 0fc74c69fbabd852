import { verify } from 'hono/jwt';
import type { ResolvedOptions } from '../options.ts';
import { TusError } from '../../model/errors.ts';
import { bearerToken, sameSecret } from './credentials.ts';

/** Who a request comes from, once its credential is checked. */
export interface Identity {
  /** The user it names (a JWT's sub, or what `authorize` said): they own the uploads they create. */
  owner?: string;
}

/**
 * Checks a request's credential; `method` is the method it will run as. Resolves with the identity,
 * or with a Response an `authorize` function chose; throws TusError for a refused credential.
 */
export type Authenticate = (request: Request, method: string) => Promise<Identity | Response>;

type AuthOptions = Pick<ResolvedOptions, 'authToken' | 'jwtSecret' | 'jwtAudience' | 'jwtIssuer' | 'jwtRequireExp' | 'authorize'>;

/** The credential check the options ask for, or undefined when the server is open. */
export function authenticator(o: AuthOptions): Authenticate | undefined {
  const checks: Authenticate[] = [];
  if (o.authToken) checks.push(staticToken(o.authToken));
  if (o.jwtSecret) checks.push(jwtToken(o.jwtSecret, o));
  if (o.authorize) checks.push(custom(o.authorize));
  if (checks.length === 0) return undefined;
  return async (request, method) => {
    const identity: Identity = {};
    for (const check of checks) {
      const result = await check(request, method);
      if (result instanceof Response) return result;
      if (result.owner !== undefined) identity.owner = result.owner;
    }
    return identity;
  };
}

/** A static bearer token every request must carry (compared in constant time). */
export function staticToken(expected: string): Authenticate {
  return async (request) => {
    const token = bearerToken(request.headers.get('Authorization'));
    if (!(await sameSecret(token, expected))) throw new TusError('UNAUTHORIZED', 'wrong token');
    return {};
  };
}

function jwtToken(secret: string, o: AuthOptions): Authenticate {
  return async (request) => {
    const token = bearerToken(request.headers.get('Authorization'));
    let payload: Record<string, unknown>;
    try {
      payload = await verify(token, secret, { alg: 'HS256', aud: o.jwtAudience, iss: o.jwtIssuer });
    } catch {
      // Which check failed (signature, expiry, audience) is not the client's to learn.
      throw new TusError('UNAUTHORIZED', 'the token is invalid or expired');
    }
    if (o.jwtRequireExp && typeof payload.exp !== 'number') throw new TusError('UNAUTHORIZED', 'the token has no exp');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TusError('UNAUTHORIZED', 'the token has no sub');
    return { owner: payload.sub };
  };
}

function custom(authorize: NonNullable<AuthOptions['authorize']>): Authenticate {
  return async (request, method) => {
    const verdict = await authorize(request, { method });
    if (verdict instanceof Response) return verdict;
    if (!verdict) throw new TusError('UNAUTHORIZED');
    return verdict.owner === undefined ? {} : { owner: verdict.owner };
  };
}
