import { type FormEvent, useState } from 'react';
import { signInError, useAuth } from '../../lib/auth';

/**
 * Paste a token: `npx devart token --role admin` prints one; with JWT_JWKS_URL the issuer's (e.g.
 * Supabase's) access token works too. The token is checked against GET /api/me before it is kept.
 */
export function SignInPage({ message }: { message?: string }) {
  const { signIn } = useAuth();
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await signIn(token.trim());
    } catch (err) {
      setError(signInError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in" id="main">
      <h1>Sign in to devart</h1>
      {message && (
        <p className="notice" role="status">
          {message}
        </p>
      )}
      <p>
        Open the <strong>Admin login</strong> link that <code>devart start</code> prints, or paste a token.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="token">Token</label>
        <textarea
          id="token"
          name="token"
          rows={4}
          value={token}
          onChange={(e) => setToken(e.target.value)}
          spellCheck={false}
          autoComplete="off"
          required
          aria-describedby="token-help"
          aria-invalid={error ? true : undefined}
        />
        <p id="token-help" className="muted">
          Mint one with <code>npx devart token --role admin</code> (or <code>viewer</code>,{' '}
          <code>supervisor</code>). When the server sets <code>JWT_JWKS_URL</code>, paste an access token from
          that issuer (for Supabase, the session's <code>access_token</code>); its role is read from{' '}
          <code>app_metadata.role</code>. The token stays in this tab only (session storage).
        </p>
        {error && (
          <p className="notice notice-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="button button-primary" disabled={busy || token.trim() === ''}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
