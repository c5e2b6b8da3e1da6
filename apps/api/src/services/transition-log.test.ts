import { describe, expect, it } from 'vitest';
import { transitionLine } from './transition-log';

describe('transitionLine', () => {
  it('says what happened to a task, with its ids and numbers as fields', () => {
    expect(
      transitionLine({
        id: '7',
        type: 'task.retry_scheduled',
        at: '2026-12-02T06:00:00.000Z',
        task_id: 't1',
        workflow_run_id: 'r1',
        agent_id: 'a1',
        data: {
          status: 'TODO',
          title: 'lint',
          capability: 'shell',
          attempt: 1,
          next_attempt_at: '2026-12-02T06:00:02Z',
        },
      }),
    ).toEqual({
      msg: 'task retry scheduled: "lint" (shell) attempt 1, due 2026-12-02T06:00:02Z',
      fields: {
        event: 'task.retry_scheduled',
        event_id: '7',
        task_id: 't1',
        workflow_run_id: 'r1',
        agent_id: 'a1',
        status: 'TODO',
        title: 'lint',
        capability: 'shell',
        attempt: 1,
        next_attempt_at: '2026-12-02T06:00:02Z',
      },
    });
    expect(
      transitionLine({
        id: '8',
        type: 'task.quarantined',
        at: '',
        task_id: 't1',
        data: { title: 'lint', attempt: 3, error: 'exit 2\nstack' },
      })?.msg,
    ).toBe('task quarantined: "lint" attempt 3: exit 2');
  });

  it('says how a run ended and how long it took; other events get no line', () => {
    expect(
      transitionLine({
        id: '9',
        type: 'workflow_run.failed',
        at: '',
        workflow_run_id: 'r1',
        data: { status: 'FAILED', workflow_id: 'w1', duration_ms: 1900, total_cost: '0', cancelled_steps: 1 },
      }),
    ).toEqual({
      msg: 'workflow run failed in 1900ms',
      fields: {
        event: 'workflow_run.failed',
        event_id: '9',
        workflow_run_id: 'r1',
        status: 'FAILED',
        workflow_id: 'w1',
        duration_ms: 1900,
        total_cost: '0',
        cancelled_steps: 1,
      },
    });
    expect(
      transitionLine({ id: '1', type: 'agent.online', at: '', agent_id: 'a', data: {} }),
    ).toBeUndefined();
    expect(
      transitionLine({ id: '2', type: 'workflow_run.step_released', at: '', workflow_run_id: 'r', data: {} }),
    ).toBeUndefined();
  });
});
