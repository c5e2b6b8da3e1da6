import type { UserRole } from '@devart/core';
import { cleanup, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from './app';
import { json, mockApi, renderSignedIn } from './test-utils';

afterEach(() => vi.unstubAllGlobals());

const task = (over: Record<string, unknown> = {}) => ({
  id: '0b7c0000-0000-4000-8000-000000000001',
  title: 'flaky build',
  description: null,
  capability: 'shell',
  payload: { command: ['make'] },
  priority: 0,
  status: 'QUARANTINED',
  agent_id: null,
  result: null,
  cost: null,
  retry_count: 3,
  max_retries: 3,
  last_error: 'exited with 2',
  workflow_run_id: null,
  created_by: null,
  created_at: '2026-12-02T06:00:00.000Z',
  updated_at: '2026-12-02T06:01:00.000Z',
  started_at: '2026-12-02T06:00:01.000Z',
  completed_at: null,
  attempt: 4,
  lease_expires_at: null,
  next_attempt_at: null,
  step_key: null,
  retry_backoff: null,
  ...over,
});
const agent = {
  id: '5e1f0000-0000-4000-8000-000000000001',
  name: 'builder-1',
  capabilities: ['shell'],
  status: 'IDLE',
  last_heartbeat_at: null,
  created_at: '2026-12-02T06:00:00.000Z',
  revoked_at: null,
};

function platform(url: URL) {
  if (url.pathname === '/api/tasks') {
    const status = url.searchParams.get('status');
    return json({ items: status && status !== 'QUARANTINED' ? [] : [task()], next_cursor: null });
  }
  if (url.pathname.startsWith('/api/tasks/') && url.pathname.endsWith('/attempts'))
    return json({ items: [] });
  if (url.pathname.startsWith('/api/tasks/')) return json(task({ status: 'TODO' }));
  if (url.pathname === '/api/events/history') return json({ items: [], next_after: null });
  if (url.pathname === '/api/agents') return json({ items: [agent] });
  return undefined;
}

async function controlsOn(path: string, role: UserRole, waitFor: string) {
  mockApi(role, platform);
  renderSignedIn(<App />, { path });
  await screen.findAllByText(waitFor);
  return screen.queryAllByRole('button').map((b) => b.textContent?.trim());
}

describe('role-aware controls (the RBAC matrix, as the API applies it)', () => {
  it.each([
    ['viewer', [], ['Cancel task', 'New task', 'Requeue', 'Register agent', 'Revoke']],
    ['supervisor', ['Cancel task', 'New task', 'Requeue'], ['Register agent', 'Revoke']],
    ['admin', ['Cancel task', 'New task', 'Requeue', 'Register agent', 'Revoke'], []],
  ] as const)('as %s: shows %j and hides %j', async (role, shown, hidden) => {
    const buttons: (string | undefined)[] = [];
    for (const [path, waitFor] of [
      ['/tasks/0b7c0000-0000-4000-8000-000000000001', 'flaky build'],
      ['/tasks', 'All tasks'],
      ['/quarantine', 'exited with 2'],
      ['/agents', 'builder-1'],
    ] as const) {
      buttons.push(...(await controlsOn(path, role, waitFor)));
      vi.unstubAllGlobals();
      cleanup();
    }
    for (const name of shown) expect(buttons, name).toContain(name);
    for (const name of hidden) expect(buttons, name).not.toContain(name);
  });
});
