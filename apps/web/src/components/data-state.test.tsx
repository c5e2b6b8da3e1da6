import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError, readProblem } from '../lib/api';
import { DataState } from './data-state';

type Query = Parameters<typeof DataState<string[]>>[0]['query'];
const query = (over: Partial<Query>): Query => ({
  data: undefined,
  error: null,
  isPending: false,
  isError: false,
  refetch: vi.fn(),
  ...over,
});

describe('DataState', () => {
  it('says what is loading, for screen readers too', () => {
    render(
      <DataState query={query({ isPending: true })} label="agents">
        {() => 'data'}
      </DataState>,
    );
    expect(screen.getByRole('status').textContent).toContain('Loading agents…');
  });

  it('shows a problem+json error by its title and detail, and offers to try again', async () => {
    const res = new Response(
      JSON.stringify({
        type: 'urn:devart:problem:unavailable',
        title: 'Service unavailable',
        status: 503,
        detail: 'The database does not answer.',
      }),
      { status: 503, headers: { 'content-type': 'application/problem+json' } },
    );
    const error = new ApiError(503, await readProblem(res));
    const refetch = vi.fn();
    render(
      <DataState query={query({ isError: true, error, refetch })} label="tasks">
        {() => 'data'}
      </DataState>,
    );
    const alert = screen.getByRole('alert');
    expect(alert.querySelector('strong')?.textContent).toBe('Service unavailable');
    expect(alert.textContent).toContain('(503)');
    expect(alert.textContent).toContain('The database does not answer.');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(refetch).toHaveBeenCalledOnce();
  });

  it('lists each invalid field of a validation problem', () => {
    const error = new ApiError(400, {
      type: 'urn:devart:problem:validation',
      title: 'Invalid request',
      status: 400,
      detail: 'body.title: Too small',
      errors: [{ location: 'body', field: 'title', message: 'Too small' }],
    });
    render(
      <DataState query={query({ isError: true, error })} label="tasks">
        {() => 'data'}
      </DataState>,
    );
    expect(screen.getByRole('listitem').textContent).toBe('title: Too small');
  });

  it('shows a network failure by its message', () => {
    render(
      <DataState query={query({ isError: true, error: new TypeError('Failed to fetch') })} label="tasks">
        {() => 'data'}
      </DataState>,
    );
    expect(screen.getByRole('alert').textContent).toContain('Could not load tasks');
    expect(screen.getByRole('alert').textContent).toContain('Failed to fetch');
  });

  it('shows the empty state when the data is empty, the data otherwise', () => {
    const { rerender } = render(
      <DataState query={query({ data: [] })} isEmpty={(d) => d.length === 0} empty="No agents yet.">
        {(d) => d.join(',')}
      </DataState>,
    );
    expect(screen.getByText('No agents yet.')).toBeTruthy();
    rerender(
      <DataState query={query({ data: ['a', 'b'] })} isEmpty={(d) => d.length === 0} empty="No agents yet.">
        {(d) => d.join(',')}
      </DataState>,
    );
    expect(screen.getByText('a,b')).toBeTruthy();
  });
});

describe('readProblem', () => {
  it('makes a problem of an answer that is not problem+json (a proxy’s HTML page)', async () => {
    const res = new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' });
    expect(await readProblem(res)).toEqual({
      type: 'about:blank',
      title: 'Bad Gateway',
      status: 502,
      detail: '<html>Bad gateway</html>',
    });
  });
});
