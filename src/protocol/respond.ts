import { redact } from '../observability/redact.ts';
import { TusError } from '../model/errors.ts';
import { TUS_VERSION } from './constants.ts';
import { statusOf } from './errors.ts';

/** The one place an error becomes a response: its status and a short plain-text reason. */
export function errorResponse(error: unknown, extra: Record<string, string> = {}): Response {
  const known = error instanceof TusError ? error : undefined;
  // The stack helps find the bug; URLs in it may carry credentials.
  if (!known) console.error(`unexpected error: ${redact(error instanceof Error ? (error.stack ?? error.message) : String(error))}`);
  const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', ...extra };
  if (known?.code === 'UNSUPPORTED_VERSION') headers['Tus-Version'] = TUS_VERSION;
  // RFC 6750: a refused or malformed bearer credential names the scheme the server wants.
  if (known?.code === 'UNAUTHORIZED') headers['WWW-Authenticate'] = 'Bearer';
  if (known?.code === 'MALFORMED_CREDENTIALS') headers['WWW-Authenticate'] = 'Bearer error="invalid_request"';
  const status = known ? statusOf(known) : 500;
  return new Response(`${known?.message ?? 'internal server error'}\n`, { status, headers });
}
