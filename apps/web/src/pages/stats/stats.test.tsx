import type { WorkflowStats } from '@devart/contracts';
import { configure, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from '../../app';
import { json, mockApi, renderSignedIn } from '../../test-utils';
import { bucketCount, hasPoints, sinceOf, statsSeries } from './series';

// The first render in a file loads the app's modules; on a busy CI machine that can outlast the default 1 s.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => vi.unstubAllGlobals());

const point = (start: string, over: Partial<WorkflowStats['over_time']['points'][number]> = {}) => ({
  start,
  runs: 3,
  completed: 2,
  failed: 1,
  cancelled: 0,
  duration_ms: { p50: 500, p95: 900 },
  cost: { p50: '0.010000', p95: '0.025000', total: '0.050000' },
  ...over,
});

const stats: WorkflowStats = {
  runs: 5,
  completed: 3,
  failed: 1,
  cancelled: 1,
  running: 0,
  success_rate: 0.6,
  duration_ms: { p50: 510, p95: 880 },
  cost: { mean: '0.0200000', total: '0.07' },
  steps: [
    { key: 'report', p50_duration_ms: 7, failure_rate: 0, mean_retries: 0 },
    { key: 'checkout', p50_duration_ms: 68, failure_rate: 0, mean_retries: 0 },
    { key: 'test', p50_duration_ms: 203, failure_rate: 0.25, mean_retries: 1.5 },
  ],
  over_time: {
    bucket: 'hour',
    points: [
      point('2026-12-02T06:00:00.000Z'),
      point('2026-12-02T07:00:00.000Z', {
        runs: 2,
        completed: 0,
        duration_ms: { p50: null, p95: null },
        cost: { p50: null, p95: null, total: '0.02' },
      }),
      point('2026-12-02T08:00:00.000Z', {
        runs: 1,
        completed: 1,
        failed: 0,
        duration_ms: { p50: 400, p95: 400 },
        cost: { p50: '0.02', p95: '0.02', total: '0.02' },
      }),
    ],
  },
};

describe('statsSeries', () => {
  it('draws p50/p95 duration and cost per bucket, leaving out buckets with no completed run', () => {
    const series = statsSeries(stats);
    const x = Date.parse('2026-12-02T06:00:00.000Z');
    const x8 = Date.parse('2026-12-02T08:00:00.000Z');
    expect(series.duration).toEqual([
      {
        name: 'p50',
        points: [
          { x, y: 500 },
          { x: x8, y: 400 },
        ],
      },
      {
        name: 'p95',
        points: [
          { x, y: 900 },
          { x: x8, y: 400 },
        ],
      },
    ]);
    expect(series.cost).toEqual([
      {
        name: 'p50',
        points: [
          { x, y: 0.01 },
          { x: x8, y: 0.02 },
        ],
      },
      {
        name: 'p95',
        points: [
          { x, y: 0.025 },
          { x: x8, y: 0.02 },
        ],
      },
    ]);
    expect(series.runs.map((r) => [r.label, r.value, r.failed])).toEqual([
      ['2026-12-02T06:00:00.000Z', 3, 1],
      ['2026-12-02T07:00:00.000Z', 2, 1],
      ['2026-12-02T08:00:00.000Z', 1, 0],
    ]);
    expect(hasPoints(series.duration)).toBe(true);
    expect(bucketCount(series.duration)).toBe(2);
    const oneDay = { bucket: 'day' as const, points: [point('2026-12-02T00:00:00.000Z')] };
    expect(bucketCount(statsSeries({ ...stats, over_time: oneDay }).duration)).toBe(1);
    expect(hasPoints(statsSeries({ ...stats, over_time: { bucket: 'day', points: [] } }).duration)).toBe(
      false,
    );
  });

  it('gives step failure rates in %, in the definition’s order when it is known', () => {
    expect(statsSeries(stats, ['checkout', 'test', 'report']).failureRates).toEqual([
      { label: 'checkout', value: 0 },
      { label: 'test', value: 25 },
      { label: 'report', value: 0 },
    ]);
    expect(statsSeries(stats).failureRates.map((d) => d.label)).toEqual(['checkout', 'report', 'test']);
  });
});

describe('sinceOf', () => {
  it('starts a window on a whole minute, so its query stays the same for that minute', () => {
    const now = Date.parse('2026-12-02T08:30:42.123Z');
    expect(sinceOf('1h', now)).toBe('2026-12-02T07:30:00.000Z');
    expect(sinceOf('24h', now)).toBe('2026-12-01T08:30:00.000Z');
    expect(sinceOf('1h', now + 10_000)).toBe(sinceOf('1h', now));
    expect(sinceOf('all', now)).toBeUndefined();
  });
});

describe('Stats page', () => {
  const workflowId = '4ef3f7b2-b276-45fb-821d-4cd1bf61ce23';
  const workflow = {
    id: workflowId,
    name: 'ci-pipeline',
    description: null,
    definition: { steps: [{ key: 'checkout', title: 'Checkout' }] },
    created_by: null,
    created_at: '2026-12-02T07:56:54.000Z',
    marketplace_item_id: null,
  };

  it('opens the only workflow’s statistics at once, and asks for the window the user picks', async () => {
    const asked: URL[] = [];
    mockApi('viewer', (url) => {
      if (url.pathname === '/api/workflows') return json({ items: [workflow], next_cursor: null });
      if (url.pathname === `/api/workflows/${workflowId}/stats`) {
        asked.push(url);
        return json(stats);
      }
      return undefined;
    });
    renderSignedIn(<App />, { path: '/stats' });
    expect((await screen.findByTestId('stats-p50')).textContent).toBe('510 ms');
    expect(screen.getByTestId('stats-p95').textContent).toBe('880 ms');
    expect(screen.getByRole('img', { name: 'p50 and p95 duration of completed runs per hour' })).toBeTruthy();
    const rates = screen.getByRole('list', { name: /^Failure rate of each step/ });
    expect(
      within(rates)
        .getAllByRole('listitem')
        .map((li) => li.textContent),
    ).toEqual(['checkout0 %', 'report0 %', 'test25 %']);
    expect(screen.getByRole('img', { name: 'p50 and p95 cost of completed runs per hour' })).toBeTruthy();
    const steps = within(screen.getByRole('region', { name: 'Steps' }));
    expect(steps.getAllByRole('row').map((r) => r.getAttribute('data-step-key'))).toEqual([
      null,
      'checkout',
      'report',
      'test',
    ]);
    expect(steps.getAllByRole('row')[3]!.textContent).toContain('25 %');
    expect(asked[0]!.searchParams.get('bucket')).toBe('hour');
    expect(asked[0]!.searchParams.get('since')).toMatch(/:00\.000Z$/);
    await userEvent.selectOptions(screen.getByLabelText('Window'), 'all');
    await waitFor(() => expect(asked.at(-1)!.searchParams.get('since')).toBeNull());
    expect(asked.at(-1)!.searchParams.get('bucket')).toBe('day');
  });

  it('lets the user pick a workflow when there are several, each with its last run', async () => {
    const other = { ...workflow, id: '5ef3f7b2-b276-45fb-821d-4cd1bf61ce23', name: 'nightly' };
    mockApi('viewer', (url) => {
      if (url.pathname === '/api/workflows') return json({ items: [other, workflow], next_cursor: null });
      if (url.pathname.endsWith('/runs')) return json({ items: [], next_cursor: null });
      return undefined;
    });
    renderSignedIn(<App />, { path: '/stats' });
    expect((await screen.findByRole('link', { name: 'Stats of nightly' })).getAttribute('href')).toBe(
      `/stats/${other.id}`,
    );
    expect(screen.getByRole('link', { name: 'Stats of ci-pipeline' })).toBeTruthy();
    await waitFor(() => expect(screen.getAllByText('never run')).toHaveLength(2));
  });

  it('says when there are no workflows', async () => {
    mockApi('viewer', (url) =>
      url.pathname === '/api/workflows' ? json({ items: [], next_cursor: null }) : undefined,
    );
    renderSignedIn(<App />, { path: '/stats' });
    expect(await screen.findByText(/No workflows yet/)).toBeTruthy();
  });

  it('says when a window has no runs, and offers all time', async () => {
    mockApi('viewer', (url) => {
      if (url.pathname === '/api/workflows') return json({ items: [workflow], next_cursor: null });
      if (url.pathname === `/api/workflows/${workflowId}/stats`) {
        return json({ ...stats, runs: 0, over_time: { bucket: 'minute', points: [] } });
      }
      return undefined;
    });
    renderSignedIn(<App />, { path: `/stats/${workflowId}?range=1h` });
    expect(await screen.findByText(/No runs in this window/)).toBeTruthy();
    expect(screen.getByRole('link', { name: 'Show all time' }).getAttribute('href')).toBe(
      `/stats/${workflowId}?range=all`,
    );
  });
});
