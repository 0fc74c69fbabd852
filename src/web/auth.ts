/** The page's access token: kept for the tab's life only (sessionStorage), never in the upload URLs tus-js-client stores. */

/** The server wants a bearer token on tus requests (AUTH_TOKEN, JWT_SECRET or its own check). */
export const authRequired = document.querySelector<HTMLMetaElement>('meta[name="tus-auth"]')?.content === 'bearer';

const TOKEN_KEY = 'tusflow-token';

export const authHeaders = (): Record<string, string> => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
};

/** Keeps the token for this tab; an empty one clears it. */
export function saveToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}
