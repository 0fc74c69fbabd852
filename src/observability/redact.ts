/**
 * Keeps secrets out of what the server prints and answers: configuration errors quote the values
 * they refuse, and backend errors can quote URLs, either of which may carry a password or a token.
 */

const HIDDEN = '***';

/** Variables whose whole value is a secret: `*_SECRET*`, `*_TOKEN`, `*_KEY*`, `*PASSWORD*`. */
const SECRET_NAME = /_SECRET|_TOKEN$|_KEY|PASSWORD/i;

/** `scheme://` and what follows up to a space, quote or angle bracket (where a URL in text ends). */
const URL_IN_TEXT = /\b[a-z][a-z\d+.-]*:\/\/[^\s"'`<>]*/gi;

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * One URL, scheme or not, with its userinfo (user and password) and query string (and fragment)
 * hidden: `redis://:pw@host/0?tls=x` → `redis://***@host/0?***`. The last `@` ends the userinfo
 * even past a `/` or `?`, so a password with those unescaped hides too much rather than too little.
 */
function hideUrlParts(url: string): string {
  const start = url.includes('://') ? url.indexOf('://') + 3 : 0;
  const at = url.lastIndexOf('@');
  const rest = at < start ? url.slice(start) : url.slice(at + 1);
  const query = rest.search(/[?#]/);
  const shown = query === -1 ? rest : `${rest.slice(0, query + 1)}${HIDDEN}`;
  return `${url.slice(0, start)}${at < start ? '' : `${HIDDEN}@`}${shown}`;
}

/** The text with every `scheme://` URL in it redacted (see hideUrlParts). */
export function redact(text: string): string {
  return text.replace(URL_IN_TEXT, hideUrlParts);
}

/**
 * A variable's value as a message may quote it: hidden whole when its name says secret; else, as a
 * URL even without a scheme, since a refused value is often a URL mistyped.
 */
export function redactVariable(name: string, value: string): string {
  if (isSecretName(name)) return HIDDEN;
  return value.includes('://') ? redact(value) : hideUrlParts(value);
}

/** An error's message, redacted, for a log line or a client. */
export function errorText(error: unknown): string {
  return redact(error instanceof Error ? error.message : String(error));
}
