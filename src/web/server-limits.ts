/** What the server says it accepts, from its tus discovery (`OPTIONS`, which needs no token). */

/** How long the page waits for the server's limit before it uploads without knowing it. */
const OPTIONS_TIMEOUT_MS = 10_000;

/**
 * The largest upload the server takes (`Tus-Max-Size`); undefined when it sets no limit or cannot
 * be asked (the server then still refuses what is too large, with 413).
 */
export async function serverMaxSize(endpoint: string): Promise<number | undefined> {
  try {
    // Files wait for this answer: one that never comes must not hold them (the server refuses what is too large anyway).
    const res = await fetch(endpoint, { method: 'OPTIONS', cache: 'no-store', headers: { 'Tus-Resumable': '1.0.0' }, signal: AbortSignal.timeout(OPTIONS_TIMEOUT_MS) });
    const header = res.headers.get('Tus-Max-Size');
    const max = header === null ? Number.NaN : Number(header);
    return Number.isSafeInteger(max) && max > 0 ? max : undefined;
  } catch {
    return undefined;
  }
}
