import type { WorkflowRunDetail, WorkflowRunStep } from '@devart/contracts';
import { describe, expect, it } from 'vitest';
import { ganttLayout, minBarWidth, niceStep } from './gantt';

const t0 = Date.parse('2026-12-02T06:00:00.000Z');
const at = (ms: number) => new Date(t0 + ms).toISOString();

function step(key: string, over: Partial<WorkflowRunStep> = {}): WorkflowRunStep {
  return {
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
  };
}

function run(
  over: Partial<Pick<WorkflowRunDetail, 'status' | 'end_time'>>,
  steps: WorkflowRunStep[],
): Pick<WorkflowRunDetail, 'status' | 'start_time' | 'end_time' | 'steps'> {
  return { status: 'RUNNING', start_time: at(0), end_time: null, steps, ...over };
}

describe('ganttLayout', () => {
  it('places each finished step from its start to its end on the run’s span', () => {
    const layout = ganttLayout(
      run({ status: 'COMPLETED', end_time: at(1000) }, [
        step('checkout', { status: 'DONE', started_at: at(0), completed_at: at(200) }),
        step('lint', { status: 'DONE', started_at: at(250), completed_at: at(500) }),
        step('test', { status: 'DONE', started_at: at(250), completed_at: at(900) }),
        step('report', { status: 'DONE', started_at: at(900), completed_at: at(1000) }),
      ]),
      t0 + 60_000,
    );
    expect(layout.spanMs).toBe(1000);
    expect(layout.rows.map((r) => [r.step.step_key, r.state, r.left, r.width])).toEqual([
      ['checkout', 'done', 0, 20],
      ['lint', 'done', 25, 25],
      ['test', 'done', 25, 65],
      ['report', 'done', 90, 10],
    ]);
    // A finished run does not stretch with the clock.
    expect(layout.ticks.map((t) => t.ms)).toEqual([0, 200, 400, 600, 800, 1000]);
  });

  it('grows a running step’s bar to now, and shows steps not started as waiting', () => {
    const steps = [
      step('checkout', { status: 'DONE', started_at: at(0), completed_at: at(1000) }),
      step('lint', { status: 'IN_PROGRESS', started_at: at(1000) }),
      step('report'),
    ];
    const early = ganttLayout(run({}, steps), t0 + 2000);
    expect(early.spanMs).toBe(2000);
    expect(early.rows[1]).toMatchObject({
      state: 'running',
      startMs: 1000,
      endMs: 2000,
      left: 50,
      width: 50,
    });
    expect(early.rows[2]).toMatchObject({ state: 'waiting', left: null, width: null });
    const later = ganttLayout(run({}, steps), t0 + 4000);
    expect(later.rows[1]).toMatchObject({ endMs: 4000, left: 25, width: 75 });
    expect(later.rows[0]!.width).toBe(25);
  });

  it('ends a failed step with its run, and marks the steps the run’s end cancelled before they started as not run', () => {
    const layout = ganttLayout(
      run({ status: 'FAILED', end_time: at(3000) }, [
        step('checkout', { status: 'DONE', started_at: at(0), completed_at: at(1000) }),
        step('test', { status: 'QUARANTINED', started_at: at(1000), attempts: 4, last_error: 'exit 2' }),
        step('report', { status: 'CANCELLED' }),
      ]),
      t0 + 99_000,
    );
    expect(layout.spanMs).toBe(3000);
    expect(layout.rows[1]).toMatchObject({ state: 'failed', endMs: 3000 });
    expect(layout.rows[1]!.width).toBeCloseTo(66.667, 2);
    expect(layout.rows[2]).toMatchObject({ state: 'not-run', left: null });
  });

  it('keeps a very short step visible and inside the track, and a running bar whose start is after the browser’s now', () => {
    const layout = ganttLayout(
      run({ status: 'COMPLETED', end_time: at(600_000) }, [
        step('a', { status: 'DONE', started_at: at(599_999), completed_at: at(600_000) }),
      ]),
      t0,
    );
    expect(layout.rows[0]!.width).toBeCloseTo(minBarWidth, 9);
    expect(layout.rows[0]!.left! + layout.rows[0]!.width!).toBeLessThanOrEqual(100);
    // The server's clock ahead of the browser's: the bar has no negative length.
    const skewed = ganttLayout(
      run({}, [step('a', { status: 'IN_PROGRESS', started_at: at(5000) })]),
      t0 + 1000,
    );
    expect(skewed.rows[0]).toMatchObject({ startMs: 5000, endMs: 5000 });
    expect(skewed.rows[0]!.width).toBeCloseTo(minBarWidth, 9);
  });

  it('shows a step waiting for a retry (TODO after an attempt) as retrying, up to now', () => {
    const layout = ganttLayout(
      run({}, [step('flaky', { status: 'TODO', started_at: at(0), attempts: 1, retry_count: 1 })]),
      t0 + 500,
    );
    expect(layout.rows[0]).toMatchObject({ state: 'retrying', endMs: 500, width: 100 });
  });
});

describe('niceStep', () => {
  it('spaces ticks at 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(1000)).toBe(200);
    expect(niceStep(500)).toBe(100);
    expect(niceStep(60_000)).toBe(20_000);
    expect(niceStep(7)).toBe(2);
    expect(niceStep(0)).toBe(0.2);
  });
});
