// What the chaos test's agents log, and how the log is judged: pure functions over the effects,
// the pids the test killed, and the attempt the database recorded as DONE.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * One line of an agent's effect log.
 * - `started`: the platform accepted this agent's start of the attempt;
 * - `begin` / `finish`: the callback (the effect) began / produced its outcome;
 * - `confirmed` / `refused`: the platform's answer to the completion report.
 */
export type Effect =
  | { e: 'started' | 'begin' | 'finish' | 'confirmed'; task: string; attempt: number; pid: number; t: number }
  | { e: 'refused'; task: string; attempt: number; status: number; pid: number; t: number };

export interface EffectCounts {
  /** Tasks whose effect began (a later start) after a completion of the task was confirmed. */
  duplicateAfterDone: number;
  /** Tasks that ran again after an agent finished them, where that agent was not killed before its report was confirmed. */
  rerunAfterFinished: number;
  /** Attempts started by two processes (the fence should make this impossible). */
  doubleStarts: number;
  /** Outcomes finished in an agent the test never killed, with no answer logged and not DONE in the database: dropped. */
  unreportedByLiveAgents: number;
  /** A few examples, for the report. */
  examples: string[];
}

/** Reads every `*.jsonl` effect log in a directory; a line cut short by a kill -9 is skipped. */
export function readEffects(dir: string): Effect[] {
  const effects: Effect[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (!line) continue;
      try {
        effects.push(JSON.parse(line) as Effect);
      } catch {
        // The last line of a killed process may be partial.
      }
    }
  }
  return effects.sort((a, b) => a.t - b.t);
}

/**
 * Judges the effects.
 * @param killedAt pid → when the test sent it SIGKILL
 * @param doneAttempt task id → the attempt the database recorded as DONE
 * @example
 * judgeEffects(readEffects(dir), new Map([[4242, Date.now()]]), new Map([[taskId, 1]]))
 */
export function judgeEffects(
  effects: readonly Effect[],
  killedAt: ReadonlyMap<number, number>,
  doneAttempt: ReadonlyMap<string, number>,
): EffectCounts {
  const byTask = new Map<string, Effect[]>();
  for (const effect of effects) {
    const list = byTask.get(effect.task);
    if (list) list.push(effect);
    else byTask.set(effect.task, [effect]);
  }
  const counts: EffectCounts = {
    duplicateAfterDone: 0,
    rerunAfterFinished: 0,
    doubleStarts: 0,
    unreportedByLiveAgents: 0,
    examples: [],
  };
  const example = (text: string) => {
    if (counts.examples.length < 12) counts.examples.push(text);
  };

  for (const [task, list] of byTask) {
    const begins = list.filter((x) => x.e === 'begin');
    const confirmed = list.filter((x) => x.e === 'confirmed');
    const firstConfirmed = confirmed[0]?.t;
    const done = doneAttempt.get(task);
    const duplicate = begins.find(
      (b) =>
        (firstConfirmed !== undefined && b.t > firstConfirmed) || (done !== undefined && b.attempt > done),
    );
    if (duplicate) {
      counts.duplicateAfterDone++;
      example(
        `duplicate_after_done: task ${task} attempt ${duplicate.attempt} began in pid ${duplicate.pid} after DONE (confirmed attempt ${confirmed[0]?.attempt ?? done})`,
      );
    }

    const rerun = list
      .filter((x) => x.e === 'finish')
      .find((finish) => {
        const reported = confirmed.some((c) => c.pid === finish.pid && c.attempt === finish.attempt);
        const killed = killedAt.get(finish.pid);
        // Allowed only when the agent died by the test's hand holding an unconfirmed outcome, and
        // before the task ran again: a re-run while the agent that finished was alive means its
        // outcome was dropped, whatever became of that agent later.
        return begins.some(
          (b) =>
            b.t > finish.t &&
            (b.pid !== finish.pid || b.attempt !== finish.attempt) &&
            !(killed !== undefined && killed < b.t && !reported),
        );
      });
    if (rerun) {
      counts.rerunAfterFinished++;
      example(
        `rerun_after_finished: task ${task} attempt ${rerun.attempt} finished in pid ${rerun.pid} (${killedAt.has(rerun.pid) ? 'killed by the test' : 'never killed'}), then ran again`,
      );
    }

    const starters = new Map<number, Set<number>>();
    for (const x of list) {
      if (x.e !== 'started' && x.e !== 'begin') continue;
      const pids = starters.get(x.attempt) ?? new Set<number>();
      pids.add(x.pid);
      starters.set(x.attempt, pids);
    }
    for (const [attempt, pids] of starters) {
      if (pids.size > 1) {
        counts.doubleStarts++;
        example(`double start: task ${task} attempt ${attempt} started by pids ${[...pids].join(', ')}`);
      }
    }
    for (const finish of list.filter((x) => x.e === 'finish')) {
      const answered = list.some(
        (x) =>
          (x.e === 'confirmed' || x.e === 'refused') && x.pid === finish.pid && x.attempt === finish.attempt,
      );
      // The database knowing this attempt DONE means the report got through and only its answer was lost.
      if (!answered && !killedAt.has(finish.pid) && done !== finish.attempt) {
        counts.unreportedByLiveAgents++;
        example(
          `dropped: task ${task} attempt ${finish.attempt} finished in pid ${finish.pid}, never killed, never answered`,
        );
      }
    }
  }
  return counts;
}
