import type { Task } from '@devart/contracts';
import { expect, inject } from 'vitest';
import { api, timeouts, unique } from './browser';

export const admin = () => inject('adminToken');

/** Creates a task as a script would, through the API with the admin token. */
export function createTask(body: Record<string, unknown>): Promise<Task> {
  return api<Task>(admin(), '/api/tasks', { body });
}

/** Waits, through the API, until the task reaches `status`. */
export async function taskReaches(
  id: string,
  status: Task['status'],
  timeout: number = timeouts.run,
): Promise<Task> {
  let task: Task | undefined;
  await expect
    .poll(
      async () => {
        task = await api<Task>(admin(), `/api/tasks/${id}`);
        return task.status;
      },
      { timeout, interval: 200 },
    )
    .toBe(status);
  return task!;
}

/** A shell task that exits 3 and may not retry: the demo agents quarantine it after one attempt. */
export async function quarantinedTask(): Promise<Task> {
  const task = await createTask({
    title: unique('Flaky deploy'),
    capability: 'shell',
    max_retries: 0,
    payload: { command: ['sh', '-c', 'echo "deploying"; echo "registry unreachable" >&2; exit 3'] },
  });
  await taskReaches(task.id, 'QUARANTINED');
  return task;
}
