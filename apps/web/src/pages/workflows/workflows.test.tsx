import type { UserRole } from '@devart/core';
import { configure, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { App } from '../../app';
import { json, mockApi, renderSignedIn } from '../../test-utils';

// The first render in a file loads the app's modules; on a busy CI machine that can outlast the default 1 s.
configure({ asyncUtilTimeout: 5000 });

// React Flow measures its box; jsdom has no layout, so a box that never resizes does.
beforeAll(() => {
  globalThis.ResizeObserver ??= class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
});
afterEach(() => vi.unstubAllGlobals());

const workflowId = '4ef3f7b2-b276-45fb-821d-4cd1bf61ce23';
const runId = '1f24f5fb-e598-4e3b-9530-8a6d1daae168';
const workflow = {
  id: workflowId,
  name: 'ci-pipeline',
  description: 'Demo: checkout → lint ‖ test → report',
  definition: {
    variables: { branch: { type: 'string', default: 'main', description: 'The branch to build' } },
    steps: [
      { key: 'checkout', title: 'Checkout', capability: 'echo', payload: {}, depends_on: [] },
      { key: 'lint', title: 'Lint', capability: 'echo', payload: {}, depends_on: ['checkout'] },
      {
        key: 'test',
        title: 'Test (in a sandbox)',
        capability: 'shell',
        payload: {},
        depends_on: ['checkout'],
      },
      { key: 'report', title: 'Report', capability: 'echo', payload: {}, depends_on: ['lint', 'test'] },
    ],
  },
  created_by: null,
  created_at: '2026-12-02T07:56:54.000Z',
  marketplace_item_id: null,
};
const t = (ms: number) => new Date(Date.parse('2026-12-02T08:00:00.000Z') + ms).toISOString();
const step = (key: string, over: Record<string, unknown>) => ({
  task_id: `0b7c0000-0000-4000-8000-00000000000${key.length}`,
  step_key: key,
  title: key,
  status: 'PENDING',
  attempts: 0,
  retry_count: 0,
  started_at: null,
  completed_at: null,
  duration_ms: null,
  cost: null,
  last_error: null,
  ...over,
});
const run = (over: Record<string, unknown> = {}) => ({
  id: runId,
  workflow_id: workflowId,
  status: 'RUNNING',
  trigger_context: { branch: 'main' },
  start_time: t(0),
  end_time: null,
  duration_ms: null,
  total_cost: null,
  steps: [
    step('checkout', { status: 'DONE', started_at: t(0), completed_at: t(70), cost: '0.01' }),
    step('lint', { status: 'IN_PROGRESS', started_at: t(100) }),
    step('test', { status: 'TODO' }),
    step('report', {}),
  ],
  ...over,
});

function workflowsApi(current: () => ReturnType<typeof run>) {
  return (url: URL) => {
    if (url.pathname === '/api/workflows') return json({ items: [workflow], next_cursor: null });
    if (url.pathname === `/api/workflows/${workflowId}`) return json(workflow);
    if (url.pathname === `/api/workflows/${workflowId}/runs`) {
      const { steps: _steps, ...summary } = current();
      return json({ items: [summary], next_cursor: null });
    }
    if (url.pathname === `/api/workflow-runs/${runId}`) return json(current());
    return undefined;
  };
}

describe('workflow pages', () => {
  it('lists workflows with their version, step count and last run', async () => {
    mockApi('viewer', workflowsApi(run));
    renderSignedIn(<App />, { path: '/workflows' });
    const row = (await screen.findByRole('link', { name: 'ci-pipeline' })).closest('tr')!;
    expect(row.getAttribute('data-workflow-name')).toBe('ci-pipeline');
    await waitFor(() => expect(within(row).getByText('RUNNING')).toBeTruthy());
    const cells = within(row)
      .getAllByRole('cell')
      .map((c) => c.textContent);
    expect(cells[1]).toBe('local');
    expect(cells[2]).toBe('4');
  });

  it.each([
    ['viewer', false],
    ['supervisor', true],
    ['admin', true],
  ] as [UserRole, boolean][])(
    'as %s, the workflow page draws the DAG, lists runs, and shows Trigger: %s',
    async (role, shown) => {
      mockApi(role, workflowsApi(run));
      renderSignedIn(<App />, { path: `/workflows/${workflowId}` });
      expect(await screen.findByRole('heading', { name: 'ci-pipeline' })).toBeTruthy();
      expect(screen.getByRole('region', { name: 'Steps of ci-pipeline as a graph' })).toBeTruthy();
      await screen.findByRole('link', { name: /^Run 1f24f5fb/ });
      expect(Boolean(screen.queryByRole('button', { name: 'Trigger run' }))).toBe(shown);
      expect(Boolean(screen.queryByRole('form', { name: 'Trigger a run' }))).toBe(shown);
    },
  );

  it('shows a run: status, duration, cost and one timeline row per step linking to its task', async () => {
    mockApi('viewer', workflowsApi(run));
    renderSignedIn(<App />, { path: `/workflows/runs/${runId}` });
    expect((await screen.findByTestId('run-status')).textContent).toBe('RUNNING');
    const rows = document.querySelectorAll('[data-step-key]');
    expect([...rows].filter((r) => r.tagName === 'LI').map((r) => r.getAttribute('data-step-key'))).toEqual([
      'checkout',
      'lint',
      'test',
      'report',
    ]);
    const report = document.querySelector('li[data-step-key="report"]')!;
    expect(within(report as HTMLElement).getByText('waiting')).toBeTruthy();
    expect(
      within(report as HTMLElement)
        .getByRole('link', { name: 'report' })
        .getAttribute('href'),
    ).toBe('/tasks/0b7c0000-0000-4000-8000-000000000006');
    expect(screen.queryByRole('button', { name: 'Cancel run' })).toBeNull();
  });

  it('lets a supervisor cancel a running run, confirming first', async () => {
    let current = run();
    const fetchMock = mockApi('supervisor', async (url, init) => {
      if (url.pathname === `/api/workflow-runs/${runId}/cancel` && init?.method === 'POST') {
        current = run({ status: 'CANCELLED', end_time: t(500), duration_ms: 500, total_cost: '0.01' });
        return json(current);
      }
      return workflowsApi(() => current)(url);
    });
    renderSignedIn(<App />, { path: `/workflows/runs/${runId}` });
    await userEvent.click(await screen.findByRole('button', { name: 'Cancel run' }));
    const dialog = screen.getByRole('dialog', { name: 'Cancel this run?' });
    await userEvent.click(within(dialog).getByRole('button', { name: 'Cancel run' }));
    await waitFor(() => expect(screen.getByTestId('run-status').textContent).toBe('CANCELLED'));
    expect(screen.getByTestId('run-duration').textContent).toBe('500 ms');
    expect(screen.getByTestId('run-cost').textContent).toBe('0.01');
    expect(screen.queryByRole('button', { name: 'Cancel run' })).toBeNull();
    expect(fetchMock.mock.calls.some(([u]) => String(u).endsWith('/cancel'))).toBe(true);
  });
});
