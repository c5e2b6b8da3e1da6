/**
 * Where the browser keeps the signed-in token: sessionStorage, so it lives as long as the tab and
 * never reaches other tabs, disk history or the server's logs (a login link carries it in the URL
 * fragment, which browsers never send).
 */
export const TOKEN_KEY = 'devart.token';

function storage(): Storage | undefined {
  try {
    return globalThis.sessionStorage;
  } catch {
    // A sandboxed iframe or disabled storage: signed out every reload, but the page still works.
    return undefined;
  }
}

export function readToken(): string | null {
  return storage()?.getItem(TOKEN_KEY) ?? null;
}

export function storeToken(token: string): void {
  storage()?.setItem(TOKEN_KEY, token);
}

export function clearToken(): void {
  storage()?.removeItem(TOKEN_KEY);
}

/**
 * Takes `#token=<JWT>` out of the address (the link `devart start` prints): stores the token and
 * rewrites the URL without it at once, so it is neither bookmarked nor shown. Other fragment
 * parameters are kept. Returns the token found, or null.
 * @example captureTokenFromHash(window.location, window.history) // 'eyJ…' and the URL is now '/'
 */
export function captureTokenFromHash(
  location: Pick<Location, 'hash' | 'pathname' | 'search'>,
  history: Pick<History, 'replaceState' | 'state'>,
): string | null {
  if (!location.hash.includes('token=')) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token')?.trim();
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  if (!token) return null;
  storeToken(token);
  return token;
}
