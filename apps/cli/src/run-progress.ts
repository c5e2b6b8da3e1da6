import type { PlatformEvent } from '@devart/sdk';
import { formatDuration, type HttpApi } from './http-api';

/** GET /api/workflow-runs/{id}, the fields the display shows. */
export interface RunDetail {
  id: string;
  status: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  duration_ms: number | null;
  total_cost: string | null;
  steps: {
    task_id: string;
    step_key: string;
    status: string;
    attempts: number;
    duration_ms: number | null;
    last_error: string | null;
  }[];
}

const marks: Record<string, string> = {
  PENDING: '·',
  TODO: '○',
  IN_PROGRESS: '▶',
  DONE: '✓',
  QUARANTINED: '✗',
  CANCELLED: '-',
};

/** The lines of one run: a head line, then a line per step. */
export function runLines(label: string, run: RunDetail): string[] {
  const done = run.steps.filter((s) => s.status === 'DONE').length;
  const width = Math.max(...run.steps.map((s) => s.step_key.length));
  const head = [
    `run ${run.id}`,
    label,
    run.status,
    `${done}/${run.steps.length} steps`,
    formatDuration(run.duration_ms),
    run.total_cost ? `cost ${run.total_cost}` : '',
  ].filter(Boolean);
  return [
    head.join('  '),
    ...run.steps.map((s) =>
      [
        `  ${marks[s.status] ?? '?'} ${s.step_key.padEnd(width)}  ${s.status.padEnd(11)}`,
        s.attempts > 1 ? `attempt ${s.attempts}` : '',
        formatDuration(s.duration_ms),
        s.status === 'QUARANTINED' && s.last_error ? s.last_error.split('\n')[0]!.slice(0, 120) : '',
      ]
        .filter(Boolean)
        .join('  ')
        .trimEnd(),
    ),
  ];
}

/**
 * Shows runs as they progress. On a terminal the runs still going are one block redrawn in place
 * (cursor up, clear); a run that ends is printed once more and left on the screen. Elsewhere (a
 * pipe, a file) it prints a plain line per change of a step or run, which logs and tests can read.
 */
export class RunProgress {
  private readonly active = new Map<string, RunDetail>();
  private readonly seen = new Map<string, string>();
  private drawn = 0;

  constructor(
    private readonly out: (text: string) => void,
    private readonly tty: boolean,
    private readonly label: string,
  ) {}

  /** Shows the run's current state; returns true when it has ended. */
  update(run: RunDetail): boolean {
    const ended = run.status !== 'RUNNING';
    if (this.tty) {
      if (ended) this.active.delete(run.id);
      else this.active.set(run.id, run);
      this.clear();
      if (ended) this.out(runLines(this.label, run).join('\n'));
      this.draw();
      return ended;
    }
    for (const step of run.steps) {
      const state = `${step.status}/${step.attempts}`;
      if (this.seen.get(step.task_id) === state) continue;
      this.seen.set(step.task_id, state);
      this.out(
        [
          `run ${run.id}  step ${step.step_key}  ${step.status}`,
          step.attempts > 1 ? `attempt ${step.attempts}` : '',
          formatDuration(step.duration_ms),
        ]
          .filter(Boolean)
          .join('  '),
      );
    }
    if (this.seen.get(run.id) !== run.status) {
      this.seen.set(run.id, run.status);
      this.out(runLines(this.label, run)[0]!);
    }
    return ended;
  }

  private clear() {
    // Cursor to the start of the block's first line, then erase to the end of the screen.
    if (this.drawn > 0) this.out(`\x1b[${this.drawn}F\x1b[J\x1b[1A`);
    this.drawn = 0;
  }

  private draw() {
    const lines = [...this.active.values()].flatMap((run) => runLines(this.label, run));
    if (lines.length === 0) return;
    this.out(lines.join('\n'));
    this.drawn = lines.length;
  }
}

/**
 * Follows one run to its end: its events (replayed from the start of the log, so nothing that
 * happened before the stream opened is missed) each prompt a read of the run, which is shown.
 */
export async function followRun(
  api: HttpApi,
  runId: string,
  progress: RunProgress,
  signal: AbortSignal,
): Promise<RunDetail> {
  let run = await api.get<RunDetail>(`/api/workflow-runs/${runId}`);
  if (progress.update(run)) return run;
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  for await (const _event of api.events({ workflow_run_id: runId, after: '0', signal: both })) {
    run = await api.get<RunDetail>(`/api/workflow-runs/${runId}`);
    if (progress.update(run)) {
      stop.abort();
      break;
    }
  }
  return run;
}

/** Whether an event is about a run or its steps (what a display of runs reacts to). */
export const isRunEvent = (event: PlatformEvent) => event.workflow_run_id !== undefined;
