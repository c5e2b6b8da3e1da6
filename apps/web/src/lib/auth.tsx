import type { Session } from '@devart/contracts';
import { type Action, decideAccess } from '@devart/core';
import { useQueryClient } from '@tanstack/react-query';
import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from 'react';
import { ApiError, api, onUnauthorized } from './api';
import { captureTokenFromHash, clearToken, readToken, storeToken } from './auth-token';

export type UserSession = Extract<Session, { kind: 'user' }>;

export type AuthState =
  | { status: 'checking' }
  | { status: 'signed-out'; message?: string }
  | { status: 'signed-in'; token: string; session: UserSession };

interface AuthContextValue {
  state: AuthState;
  /** Checks the token against GET /api/me; resolves on success, rejects with a message to show. */
  signIn(token: string): Promise<void>;
  signOut(message?: string): void;
}

const AuthContext = createContext<AuthContextValue | null>(null);

/** Asks the API who a token belongs to; an agent key is refused here with a sentence that says so. */
export async function checkToken(token: string): Promise<UserSession> {
  const session = await api<Session>('/api/me', { token });
  if (session.kind !== 'user') {
    throw new Error(
      `That is the API key of agent “${session.name}”. The console needs a user token: run npx devart token --role admin.`,
    );
  }
  return session;
}

/**
 * Keeps who is signed in: the token of a login link (`#token=…`, taken out of the URL at once) or
 * one pasted on the sign-in page, checked with GET /api/me, kept in sessionStorage. Signs out with
 * a message when the API answers 401 or the token's `exp` passes.
 */
export function AuthProvider({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const [state, setState] = useState<AuthState>(() => {
    captureTokenFromHash(window.location, window.history);
    return readToken() ? { status: 'checking' } : { status: 'signed-out' };
  });

  const signOut = useCallback(
    (message?: string) => {
      clearToken();
      queryClient.clear();
      setState({ status: 'signed-out', message });
    },
    [queryClient],
  );

  const signIn = useCallback(async (token: string) => {
    const session = await checkToken(token);
    storeToken(token);
    setState({ status: 'signed-in', token, session });
  }, []);

  // The token found at load (a login link, or a reload of a signed-in tab).
  useEffect(() => {
    const token = readToken();
    if (!token) return;
    let cancelled = false;
    checkToken(token)
      .then((session) => !cancelled && setState({ status: 'signed-in', token, session }))
      .catch((error: unknown) => {
        if (cancelled) return;
        clearToken();
        setState({ status: 'signed-out', message: signInError(error) });
      });
    return () => {
      cancelled = true;
    };
  }, []);

  useEffect(() => onUnauthorized((reason) => signOut(`Signed out: ${reason}`)), [signOut]);

  // Sign out when the token expires, rather than on the next refused request.
  const expiresAt = state.status === 'signed-in' ? state.session.expires_at : null;
  useEffect(() => {
    if (!expiresAt) return;
    const ms = Date.parse(expiresAt) - Date.now();
    // setTimeout holds at most 2^31-1 ms (~24.8 days); a longer token is checked again on reload.
    if (ms > 2_147_483_647) return;
    const timer = setTimeout(
      () => signOut(`Your token expired at ${new Date(expiresAt).toLocaleString()}. Sign in again.`),
      Math.max(0, ms),
    );
    return () => clearTimeout(timer);
  }, [expiresAt, signOut]);

  const value = useMemo(() => ({ state, signIn, signOut }), [state, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

/** A sign-in failure in words: the problem's detail for an API answer, the message otherwise. */
export function signInError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return `The API did not answer (${error.message}).`;
  return (error as Error).message ?? String(error);
}

export function useAuth(): AuthContextValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error('useAuth needs an AuthProvider above it');
  return value;
}

/** The signed-in user; only for components rendered behind the sign-in gate. */
export function useSession(): UserSession {
  const { state } = useAuth();
  if (state.status !== 'signed-in') throw new Error('useSession is for signed-in pages');
  return state.session;
}

/**
 * Whether the signed-in role may perform an action, from the same RBAC matrix the API enforces
 * (packages/core/src/rbac.ts). Hide controls with it; the server still checks.
 * @example const canCancel = useCan('tasks.cancel');
 */
export function useCan(action: Action): boolean {
  const { state } = useAuth();
  return state.status === 'signed-in' && decideAccess(action, state.session.role) === 'allow';
}

/** Renders its children only when the signed-in role may perform `action`. */
export function Can({ action, children }: { action: Action; children: ReactNode }) {
  return useCan(action) ? children : null;
}
