import type { PlatformEvent } from '@devart/contracts';
import { QueryClient } from '@tanstack/react-query';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mergeEvents } from '../pages/overview/hooks';
import { createInvalidator } from './live';
import { invalidationsFor, queryKeys } from './query-keys';

afterEach(() => vi.useRealTimers());

const event = (over: Partial<PlatformEvent>): PlatformEvent => ({
  id: '1',
  type: 'task.done',
  at: '2026-12-02T06:00:00.000Z',
  data: {},
  ...over,
});

describe('invalidationsFor', () => {
  it('makes a task event stale the task lists, the overview, the task and, for a step, its run', () => {
    expect(invalidationsFor(event({ type: 'task.done', task_id: 't1', workflow_run_id: 'r1' }))).toEqual([
      queryKeys.tasks,
      queryKeys.overview,
      queryKeys.task('t1'),
      queryKeys.workflowRuns,
      queryKeys.workflowRun('r1'),
    ]);
  });

  it('maps run, agent, sandbox and marketplace events to their own queries', () => {
    expect(invalidationsFor(event({ type: 'workflow_run.completed', workflow_run_id: 'r1' }))).toEqual([
      queryKeys.workflowRuns,
      queryKeys.workflowRun('r1'),
      queryKeys.workflows,
      queryKeys.stats,
      queryKeys.overview,
    ]);
    expect(invalidationsFor(event({ type: 'agent.offline', agent_id: 'a1' }))).toEqual([
      queryKeys.agents,
      queryKeys.overview,
    ]);
    expect(invalidationsFor(event({ type: 'sandbox.provisioned', task_id: 't1' }))).toEqual([
      queryKeys.task('t1'),
    ]);
    expect(invalidationsFor(event({ type: 'marketplace.published', item_id: 'i1' }))).toEqual([
      queryKeys.marketplace,
    ]);
  });
});

describe('createInvalidator', () => {
  it('invalidates each stale prefix once per window, however many events named it', async () => {
    vi.useFakeTimers();
    const queryClient = new QueryClient();
    const spy = vi.spyOn(queryClient, 'invalidateQueries');
    const invalidator = createInvalidator(queryClient, 400);
    // After a quiet spell the first events apply at once (on the next tick).
    invalidator.add([queryKeys.overview]);
    await vi.advanceTimersByTimeAsync(0);
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockClear();
    for (let i = 0; i < 1000; i++) invalidator.add(invalidationsFor(event({ task_id: `t${i % 3}` })));
    await vi.advanceTimersByTimeAsync(399);
    expect(spy).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(spy.mock.calls.map(([filters]) => filters?.queryKey)).toEqual([
      queryKeys.tasks,
      queryKeys.overview,
      queryKeys.task('t0'),
      queryKeys.task('t1'),
      queryKeys.task('t2'),
    ]);
    invalidator.add([queryKeys.agents]);
    await vi.advanceTimersByTimeAsync(400);
    expect(spy).toHaveBeenCalledTimes(6);
    invalidator.add([queryKeys.agents]);
    invalidator.cancel();
    await vi.advanceTimersByTimeAsync(1000);
    expect(spy).toHaveBeenCalledTimes(6);
  });
});

describe('mergeEvents', () => {
  it('merges the live events over the overview’s, newest first by numeric id, each once', () => {
    const merged = mergeEvents(
      [event({ id: '10' }), event({ id: '9' })],
      [event({ id: '9' }), event({ id: '8' }), event({ id: '100' })],
      3,
    );
    expect(merged.map((e) => e.id)).toEqual(['100', '10', '9']);
  });
});
