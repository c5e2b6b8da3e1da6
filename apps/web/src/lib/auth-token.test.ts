import { describe, expect, it, vi } from 'vitest';
import { captureTokenFromHash, readToken, TOKEN_KEY } from './auth-token';

function at(url: string) {
  const parsed = new URL(url);
  const replaceState = vi.fn();
  return {
    location: { hash: parsed.hash, pathname: parsed.pathname, search: parsed.search },
    history: { replaceState, state: { from: 'router' } },
    replaceState,
  };
}

describe('captureTokenFromHash', () => {
  it('stores the token of a login link in sessionStorage and takes it out of the URL at once', () => {
    const page = at('http://127.0.0.1:8787/#token=eyJ.abc.def');
    expect(captureTokenFromHash(page.location, page.history)).toBe('eyJ.abc.def');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe('eyJ.abc.def');
    expect(localStorage.getItem(TOKEN_KEY)).toBeNull();
    expect(page.replaceState).toHaveBeenCalledWith({ from: 'router' }, '', '/');
  });

  it('keeps the path, the query and any other fragment parameter', () => {
    const page = at('http://host/tasks/42?status=TODO#token=t.o.k&tab=events');
    expect(captureTokenFromHash(page.location, page.history)).toBe('t.o.k');
    expect(page.replaceState).toHaveBeenCalledWith(
      { from: 'router' },
      '',
      '/tasks/42?status=TODO#tab=events',
    );
  });

  it('leaves a URL without a token alone', () => {
    const page = at('http://host/tasks#section');
    expect(captureTokenFromHash(page.location, page.history)).toBeNull();
    expect(page.replaceState).not.toHaveBeenCalled();
    expect(readToken()).toBeNull();
  });

  it('removes an empty token from the URL without storing it', () => {
    const page = at('http://host/#token=');
    expect(captureTokenFromHash(page.location, page.history)).toBeNull();
    expect(page.replaceState).toHaveBeenCalledWith({ from: 'router' }, '', '/');
    expect(readToken()).toBeNull();
  });
});
