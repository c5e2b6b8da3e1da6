import { QueryClientProvider } from '@tanstack/react-query';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from './app';
import { AuthProvider } from './lib/auth';
import { readToken, TOKEN_KEY } from './lib/auth-token';
import { LiveProvider } from './lib/live';
import { createQueryClient } from './lib/query-client';
import { json, mockApi, problem, sessionOf } from './test-utils';

afterEach(() => {
  vi.unstubAllGlobals();
  window.history.replaceState(null, '', '/');
});

function renderApp() {
  return render(
    <QueryClientProvider client={createQueryClient()}>
      <AuthProvider>
        <LiveProvider>
          <MemoryRouter>
            <App />
          </MemoryRouter>
        </LiveProvider>
      </AuthProvider>
    </QueryClientProvider>,
  );
}

const overview = {
  generated_at: new Date().toISOString(),
  tasks_by_status: { PENDING: 0, TODO: 2, IN_PROGRESS: 1, DONE: 5, QUARANTINED: 1, CANCELLED: 0 },
  throughput: [],
  outbox: { pending: 0, oldest_age_seconds: 0 },
  agents: { online: 2, busy: 1, offline: 0 },
  recent_failures: [],
  recent_events: [],
};
const overviewRoute = (url: URL) => (url.pathname === '/api/overview' ? json(overview) : undefined);

describe('signing in', () => {
  it('signs in from a login link: the token goes to sessionStorage and leaves the URL', async () => {
    const fetchMock = mockApi('admin', overviewRoute);
    window.history.replaceState(null, '', '/#token=aaa.bbb.ccc');
    renderApp();
    expect(window.location.hash).toBe('');
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe('aaa.bbb.ccc');
    expect((await screen.findByTestId('signed-in-user')).textContent).toContain('admin@example.com');
    expect(screen.getByTestId('signed-in-user').textContent).toContain('admin');
    const me = fetchMock.mock.calls.find(([url]) => String(url) === '/api/me')!;
    expect((me[1]!.headers as Record<string, string>).authorization).toBe('Bearer aaa.bbb.ccc');
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(
      within(nav)
        .getAllByRole('link')
        .map((a) => a.textContent),
    ).toEqual(['Overview', 'Tasks', 'Workflows', 'Agents', 'Quarantine', 'Stats', 'Marketplace']);
    expect((await screen.findByTestId('live-indicator')).textContent).toContain('Live');
  });

  it('shows the sign-in page without a token, and the API’s reason when a pasted token is refused', async () => {
    mockApi('viewer');
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => problem(401, 'Unauthenticated', 'Authentication required: the token has expired.')),
    );
    renderApp();
    expect(screen.getByRole('heading', { name: 'Sign in to devart' })).toBeTruthy();
    expect(screen.getByText(/JWT_JWKS_URL/)).toBeTruthy();
    await userEvent.type(screen.getByLabelText('Token'), 'old.token.value');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('the token has expired');
    expect(readToken()).toBeNull();
  });

  it('refuses an agent key on the sign-in page with a sentence saying what to use instead', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => json({ kind: 'agent', agent_id: 'a-1', name: 'builder-1' })),
    );
    renderApp();
    await userEvent.type(screen.getByLabelText('Token'), 'dva_secret');
    await userEvent.click(screen.getByRole('button', { name: 'Sign in' }));
    expect((await screen.findByRole('alert')).textContent).toContain('API key of agent “builder-1”');
  });

  it('signs out with the reason when a request is refused with 401', async () => {
    mockApi('viewer', (url) =>
      url.pathname === '/api/overview' ? problem(401, 'Unauthenticated', 'the token has expired') : undefined,
    );
    window.history.replaceState(null, '', '/#token=aaa.bbb.ccc');
    renderApp();
    expect(await screen.findByText(/Signed out: the token has expired/)).toBeTruthy();
    expect(readToken()).toBeNull();
  });

  it('signs out when the token’s expiry passes', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const soon = { ...sessionOf('viewer'), expires_at: new Date(Date.now() + 60_000).toISOString() };
      vi.stubGlobal(
        'fetch',
        vi.fn(async (input: RequestInfo | URL) => {
          const path = String(input);
          if (path === '/api/me') return json(soon);
          if (path.startsWith('/api/overview')) return json(overview);
          return new Promise<Response>(() => {});
        }),
      );
      window.history.replaceState(null, '', '/#token=aaa.bbb.ccc');
      renderApp();
      await screen.findByTestId('signed-in-user');
      await vi.advanceTimersByTimeAsync(61_000);
      expect(await screen.findByText(/Your token expired/)).toBeTruthy();
    } finally {
      vi.useRealTimers();
    }
  });
});
