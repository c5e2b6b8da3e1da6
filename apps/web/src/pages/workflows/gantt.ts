import type { WorkflowRunDetail, WorkflowRunStep } from '@devart/contracts';

/** How a step's bar is drawn; the status word is always shown beside it too. */
export type BarState = 'done' | 'running' | 'retrying' | 'failed' | 'cancelled' | 'waiting' | 'not-run';

export interface GanttRow {
  step: WorkflowRunStep;
  state: BarState;
  /** Offsets from the run's start, in ms; null for a step that never started. */
  startMs: number | null;
  endMs: number | null;
  /** Where the bar sits on the track, in % of its width; null without a bar. */
  left: number | null;
  width: number | null;
}

export interface GanttTick {
  ms: number;
  /** In % of the track's width. */
  at: number;
}

export interface GanttLayout {
  /** What the track's width stands for, in ms from the run's start. */
  spanMs: number;
  rows: GanttRow[];
  ticks: GanttTick[];
}

/** The narrowest bar, in % of the track: a 3 ms step on a 10 minute run still shows. */
export const minBarWidth = 0.6;

const stateOfStatus: Record<string, BarState> = {
  DONE: 'done',
  IN_PROGRESS: 'running',
  TODO: 'retrying',
  QUARANTINED: 'failed',
  CANCELLED: 'cancelled',
};

/**
 * "Nice" spacing for about `count` ticks over `spanMs`: 1, 2 or 5 times a power of ten.
 * @example niceStep(1000, 4) // 200 (a quarter is 250, which rounds to the nice 200)
 */
export function niceStep(spanMs: number, count = 4): number {
  const raw = Math.max(spanMs, 1) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  const nice = scaled < 1.5 ? 1 : scaled < 3.5 ? 2 : scaled < 7.5 ? 5 : 10;
  return nice * power;
}

/**
 * A run's steps as Gantt bars: each from its start to its end, relative to the run's start and
 * scaled so the whole run fits the track. A step still running ends at `now` (its bar grows with
 * the clock); one the run ended without a completion ends with the run; one that never started
 * has no bar (waiting while the run runs, not run once it ended).
 * @example ganttLayout(run, Date.now()).rows[0] // { state: 'done', left: 0, width: 13.6, … }
 */
export function ganttLayout(
  run: Pick<WorkflowRunDetail, 'status' | 'start_time' | 'end_time' | 'steps'>,
  now: number,
): GanttLayout {
  const t0 = Date.parse(run.start_time);
  const running = run.status === 'RUNNING';
  const runEnd = run.end_time ? Date.parse(run.end_time) : now;
  const spans = run.steps.map((step) => {
    if (!step.started_at) return null;
    const start = Date.parse(step.started_at);
    const end = step.completed_at
      ? Date.parse(step.completed_at)
      : running && (step.status === 'IN_PROGRESS' || step.status === 'TODO')
        ? now
        : runEnd;
    // A browser clock behind the server's would end a running bar before it started.
    return { start: start - t0, end: Math.max(end, start) - t0 };
  });
  const spanMs = Math.max(1, runEnd - t0, ...spans.map((s) => s?.end ?? 0));
  const rows = run.steps.map((step, i): GanttRow => {
    const span = spans[i];
    if (!span) {
      return {
        step,
        state: running && step.status !== 'CANCELLED' ? 'waiting' : 'not-run',
        startMs: null,
        endMs: null,
        left: null,
        width: null,
      };
    }
    const left = Math.min(100 - minBarWidth, Math.max(0, (span.start / spanMs) * 100));
    const width = Math.min(100 - left, Math.max(minBarWidth, ((span.end - span.start) / spanMs) * 100));
    return {
      step,
      state: stateOfStatus[step.status] ?? 'done',
      startMs: span.start,
      endMs: span.end,
      left,
      width,
    };
  });
  const step = niceStep(spanMs);
  const ticks: GanttTick[] = [];
  for (let ms = 0; ms <= spanMs + 1e-9; ms += step) ticks.push({ ms, at: (ms / spanMs) * 100 });
  return { spanMs, rows, ticks };
}
