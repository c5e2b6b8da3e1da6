import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TaskMessage, taskMessageJsonSchema } from './task-message';

describe('the devart.task.v1 message contract', () => {
  it('is published as JSON Schema that matches the zod contract (run npm run contracts:schemas after a change)', () => {
    const committed = JSON.parse(
      readFileSync(new URL('../schemas/devart.task.v1.json', import.meta.url), 'utf8'),
    );
    expect(committed).toEqual(JSON.parse(JSON.stringify(taskMessageJsonSchema())));
  });

  it('accepts a complete v1 message and ignores fields it does not know', () => {
    const message = {
      type: 'devart.task.v1',
      task_id: '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10',
      attempt: 2,
      capability: 'shell',
      title: 'lint',
      payload: { command: ['npm', 'run', 'lint'] },
      workflow_run_id: null,
      enqueued_at: '2026-11-28T07:00:00.000000Z',
      last_error: 'lease expired',
    };
    expect(TaskMessage.parse(message)).toEqual(message);
  });

  it('refuses a message of another type or without an attempt', () => {
    expect(TaskMessage.safeParse({ type: 'devart.task.v2' }).success).toBe(false);
    expect(
      TaskMessage.safeParse({
        type: 'devart.task.v1',
        task_id: '0b7c3d7e-1d7a-4c55-9a43-0c1c1d1e1f10',
        capability: null,
        title: 't',
        payload: {},
        workflow_run_id: null,
        enqueued_at: 'x',
      }).success,
    ).toBe(false);
  });
});
