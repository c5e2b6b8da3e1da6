import type { Session } from '@devart/contracts';
import type { UserRole } from '@devart/core';
import { QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import { MemoryRouter } from 'react-router';
import { vi } from 'vitest';
import { AuthProvider } from './lib/auth';
import { storeToken } from './lib/auth-token';
import { LiveProvider } from './lib/live';
import { createQueryClient } from './lib/query-client';

export type Route = (
  url: URL,
  init: RequestInit | undefined,
) => Response | undefined | Promise<Response | undefined>;

/** A JSON answer. */
export const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/** A problem+json answer. */
export const problem = (status: number, title: string, detail?: string) =>
  new Response(JSON.stringify({ type: 'urn:devart:problem:x', title, status, detail }), {
    status,
    headers: { 'content-type': 'application/problem+json' },
  });

/** A user session as GET /api/me answers it. */
export const sessionOf = (role: UserRole): Session => ({
  kind: 'user',
  subject: '7d0a0000-0000-4000-8000-000000000001',
  email: `${role}@example.com`,
  role,
  expires_at: new Date(Date.now() + 3_600_000).toISOString(),
});

/**
 * Replaces fetch: /api/me answers `role`'s session, /api/events a stream that stays open, and
 * each other request goes through `routes` in turn (the first that answers wins; 404 otherwise).
 * Returns the mock, whose calls a test can inspect.
 */
export function mockApi(role: UserRole, ...routes: Route[]) {
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), 'http://localhost');
    if (url.pathname === '/api/me') return json(sessionOf(role));
    if (url.pathname === '/api/events') {
      return new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('event: ready\ndata: {}\n\n'));
            init?.signal?.addEventListener('abort', () =>
              controller.error(new DOMException('aborted', 'AbortError')),
            );
          },
        }),
        { headers: { 'content-type': 'text/event-stream' } },
      );
    }
    for (const route of routes) {
      const res = await route(url, init);
      if (res) return res;
    }
    return problem(404, 'Not found', `No route ${init?.method ?? 'GET'} ${url.pathname}.`);
  });
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

/** Renders `ui` signed in (a token in sessionStorage, checked against the mocked /api/me), at `path`. */
export function renderSignedIn(ui: ReactNode, { path = '/' }: { path?: string } = {}) {
  storeToken('header.payload.signature');
  const queryClient = createQueryClient();
  return render(
    <QueryClientProvider client={queryClient}>
      <AuthProvider>
        <LiveProvider>
          <MemoryRouter initialEntries={[path]}>{ui}</MemoryRouter>
        </LiveProvider>
      </AuthProvider>
    </QueryClientProvider>,
  );
}
