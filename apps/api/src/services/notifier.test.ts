import { listDeliveries } from '@devart/db';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../../test/db';
import {
  capabilityNotifies,
  composeNotification,
  excerpt,
  formatDuration,
  latestSummaryTime,
  type NotificationPolicy,
  startDailySummaries,
} from './notifier';

let current: TestDatabase;
beforeAll(async () => {
  current = await createTestDatabase();
});
afterAll(() => current?.drop());

const policy: NotificationPolicy = {
  events: ['task.quarantined', 'workflow_run.failed', 'workflow_run.completed', 'agent.offline'],
  excludeCapabilities: [],
  publicUrl: 'https://d.example',
};

async function agent(status: string, capabilities: string[]) {
  const { rows } = await current.db.query<{ id: string }>(
    `INSERT INTO agents (name, capabilities, status, api_key_hash, last_heartbeat_at)
     VALUES ('builder <1>', $1, $2, md5(random()::text), '2026-12-02T06:00:00Z') RETURNING id`,
    [capabilities, status],
  );
  return rows[0]!.id;
}

async function task(fields: { capability?: string | null; runId?: string; stepKey?: string }) {
  const { rows } = await current.db.query<{ id: string }>(
    `INSERT INTO tasks (title, capability, status, attempt, last_error, workflow_run_id, step_key)
     VALUES ('t', $1, 'QUARANTINED', 2, 'boom', $2, $3) RETURNING id`,
    [fields.capability ?? null, fields.runId ?? null, fields.stepKey ?? null],
  );
  return rows[0]!.id;
}

async function run(status: string, notify?: Record<string, boolean>) {
  const { rows } = await current.db.query<{ id: string }>(
    `WITH w AS (INSERT INTO workflows (name, definition) VALUES ('wf', $2::jsonb) RETURNING id)
     INSERT INTO workflow_runs (workflow_id, status, definition, end_time, total_cost)
     SELECT id, $1, $2::jsonb, now(), 1.5 FROM w RETURNING id`,
    [status, JSON.stringify({ steps: [], ...(notify ? { notify } : {}) })],
  );
  return rows[0]!.id;
}

const compose = (payload: Record<string, unknown>, p: NotificationPolicy = policy) =>
  composeNotification(current.db, p, { payload });

describe(`composing notifications on ${backend}`, () => {
  it('tells an agent offline with its capabilities and last sign of life, unless it is back', async () => {
    const id = await agent('OFFLINE', ['deploy', 'lint']);
    expect(await compose({ type: 'agent.offline', id: '1', agent_id: id, data: {} })).toEqual({
      outcome: 'notify',
      notification: {
        icon: '⚠️',
        headline: 'Agent offline',
        subject: 'builder <1>',
        facts: ['deploy, lint', 'Last seen 2026-12-02 06:00 UTC'],
        link: { label: 'Open agents', url: 'https://d.example/agents' },
      },
    });
    const back = await agent('IDLE', []);
    expect(await compose({ type: 'agent.offline', id: '2', agent_id: back, data: {} })).toEqual({
      outcome: 'skip',
      reason: 'the agent is IDLE again',
    });
  });

  it('applies the capabilities in and out of NOTIFY_CAPABILITIES / NOTIFY_EXCLUDE_CAPABILITIES', async () => {
    const deploy = await task({ capability: 'deploy' });
    const payload = { type: 'task.quarantined', id: '3', task_id: deploy, data: { attempt: 2 } };
    expect((await compose(payload)).outcome).toBe('notify');
    expect(await compose(payload, { ...policy, excludeCapabilities: ['deploy'] })).toEqual({
      outcome: 'skip',
      reason: 'capability deploy does not notify',
    });
    expect((await compose(payload, { ...policy, capabilities: ['lint'] })).outcome).toBe('skip');
    expect(capabilityNotifies({ ...policy, excludeCapabilities: ['deploy'] }, ['deploy', 'lint'])).toBe(true);
    expect(capabilityNotifies({ ...policy, capabilities: ['lint'] }, [null])).toBe(false);
    expect((await compose(payload, { ...policy, events: ['agent.offline'] })).outcome).toBe('skip');
  });

  it('follows the workflow’s notify: on_failure false silences its runs and steps; no PUBLIC_URL, no link', async () => {
    const quiet = await run('FAILED', { on_failure: false });
    const step = await task({ capability: 'lint', runId: quiet, stepKey: 'build' });
    expect(
      (await compose({ type: 'workflow_run.failed', id: '4', workflow_run_id: quiet, data: {} })).outcome,
    ).toBe('skip');
    expect((await compose({ type: 'task.quarantined', id: '5', task_id: step, data: {} })).outcome).toBe(
      'skip',
    );

    const loud = await run('FAILED');
    await task({ capability: 'lint', runId: loud, stepKey: 'build' });
    const composed = await compose(
      { type: 'workflow_run.failed', id: '6', workflow_run_id: loud, data: { cancelled_steps: 2 } },
      { ...policy, publicUrl: undefined },
    );
    expect(composed).toMatchObject({
      outcome: 'notify',
      notification: {
        headline: 'Workflow run failed',
        subject: 'wf',
        facts: [
          'Step build (t) quarantined after 2 attempts',
          expect.stringMatching(/^2 steps cancelled · .* · cost 1.5$/),
        ],
        excerpt: 'boom',
      },
    });
    expect(composed.outcome === 'notify' && composed.notification.link).toBeUndefined();
  });

  it('queues one daily summary a day across processes, counting the day’s events', async () => {
    const channels = [{ name: 'summary-test', target: '1' }];
    const silent = pino({ level: 'silent' });
    const start = () =>
      startDailySummaries({
        db: current.db,
        logger: silent,
        at: '08:30',
        channels,
        checkEveryMs: 3_600_000,
        clock: () => new Date('2026-12-02T09:00:00Z'),
      });
    // Two processes started after the day's time: both try at once, one row.
    const a = start();
    const b = start();
    try {
      await a.queueDue(new Date('2026-12-02T09:00:00Z'));
      await b.queueDue(new Date('2026-12-02T09:01:00Z'));
      await a.queueDue(new Date('2026-12-03T08:29:00Z'));
      await a.queueDue(new Date('2026-12-03T08:30:00Z'));
    } finally {
      a.stop();
      b.stop();
    }
    const rows = await listDeliveries(current.db, { channel: 'summary-test' });
    expect(rows.map((r) => r.dedupe_key)).toEqual(['daily-summary:2026-12-02', 'daily-summary:2026-12-03']);
    const summary = rows.find((r) => r.dedupe_key === 'daily-summary:2026-12-02')!;
    expect(summary.payload).toMatchObject({
      kind: 'daily_summary',
      since: '2026-12-01T08:30:00Z',
      until: '2026-12-02T08:30:00Z',
    });
    const composed = await compose(summary.payload);
    expect(composed).toMatchObject({
      outcome: 'notify',
      notification: { headline: 'Daily summary', subject: '24 h to 2026-12-02 08:30 UTC' },
    });
  });
});

describe('notification text helpers', () => {
  it('formats durations and cuts excerpts for a phone', () => {
    expect([850, 12_000, 125_000, 3_780_000].map(formatDuration)).toEqual([
      '850 ms',
      '12 s',
      '2 min 5 s',
      '1 h 3 min',
    ]);
    expect(excerpt('x'.repeat(400))).toHaveLength(300);
    expect(excerpt('1\n2\n3\n4\n5\n6\n7\n8')).toBe('1\n2\n3\n4\n5\n6');
    expect(excerpt(null)).toBeUndefined();
  });

  it('finds the latest scheduled summary time at or before now (UTC)', () => {
    expect(latestSummaryTime('08:30', new Date('2026-12-02T09:00:00Z')).toISOString()).toBe(
      '2026-12-02T08:30:00.000Z',
    );
    expect(latestSummaryTime('08:30', new Date('2026-12-02T08:00:00Z')).toISOString()).toBe(
      '2026-12-01T08:30:00.000Z',
    );
  });
});
