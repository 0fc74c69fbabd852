/** What the server says it accepts, from its tus discovery (`OPTIONS`, which needs no token). */

/**
 * The largest upload the server takes (`Tus-Max-Size`); undefined when it sets no limit or cannot
 * be asked (the server then still refuses what is too large, with 413).
 */
export async function serverMaxSize(endpoint: string): Promise<number | undefined> {
  try {
    const res = await fetch(endpoint, { method: 'OPTIONS', cache: 'no-store', headers: { 'Tus-Resumable': '1.0.0' } });
    const header = res.headers.get('Tus-Max-Size');
    const max = header === null ? Number.NaN : Number(header);
    return Number.isSafeInteger(max) && max > 0 ? max : undefined;
  } catch {
    return undefined;
  }
}
