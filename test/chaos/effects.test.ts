import { describe, expect, it } from 'vitest';
import { type Effect, judgeEffects } from './effects';

const task = 'task-1';
const run = (pid: number, attempt: number, from: number, outcome: 'confirmed' | 'unreported'): Effect[] => [
  { e: 'started', task, attempt, pid, t: from },
  { e: 'begin', task, attempt, pid, t: from + 1 },
  { e: 'finish', task, attempt, pid, t: from + 2 },
  ...(outcome === 'confirmed' ? [{ e: 'confirmed' as const, task, attempt, pid, t: from + 3 }] : []),
];
const none = new Map<number, number>();

describe('judging the chaos test’s effect logs', () => {
  it('counts nothing for a task that ran once and was confirmed', () => {
    expect(judgeEffects(run(1, 1, 0, 'confirmed'), none, new Map([[task, 1]]))).toMatchObject({
      duplicateAfterDone: 0,
      rerunAfterFinished: 0,
      doubleStarts: 0,
      unreportedByLiveAgents: 0,
    });
  });

  it('allows a re-run when the agent that finished was killed before its report was confirmed', () => {
    const effects = [...run(1, 1, 0, 'unreported'), ...run(2, 2, 100, 'confirmed')];
    expect(judgeEffects(effects, new Map([[1, 50]]), new Map([[task, 2]]))).toMatchObject({
      duplicateAfterDone: 0,
      rerunAfterFinished: 0,
    });
  });

  it('counts a re-run after an agent that stayed alive finished (an outcome it dropped)', () => {
    const effects = [...run(1, 1, 0, 'unreported'), ...run(2, 2, 100, 'confirmed')];
    expect(judgeEffects(effects, none, new Map([[task, 2]]))).toMatchObject({
      duplicateAfterDone: 0,
      rerunAfterFinished: 1,
      unreportedByLiveAgents: 1,
    });
  });

  it('counts a re-run that began while the agent that finished was still alive, even if it was killed later', () => {
    const effects = [...run(1, 1, 0, 'unreported'), ...run(2, 2, 100, 'confirmed')];
    expect(judgeEffects(effects, new Map([[1, 150]]), new Map([[task, 2]])).rerunAfterFinished).toBe(1);
  });

  it('counts a start after a confirmed completion as a duplicate, killed agent or not', () => {
    const effects = [...run(1, 1, 0, 'confirmed'), ...run(2, 2, 100, 'confirmed')];
    expect(judgeEffects(effects, new Map([[1, 50]]), new Map([[task, 1]]))).toMatchObject({
      duplicateAfterDone: 1,
      rerunAfterFinished: 1,
    });
  });

  it('counts a start of an attempt later than the one the database recorded as DONE', () => {
    // The report's answer was never logged (the agent died), but the database knows attempt 1 is DONE.
    const effects = [...run(1, 1, 0, 'unreported'), ...run(2, 2, 100, 'unreported')];
    expect(judgeEffects(effects, new Map([[1, 50]]), new Map([[task, 1]])).duplicateAfterDone).toBe(1);
  });

  it('does not count an outcome whose answer was lost but which the database holds as DONE', () => {
    expect(judgeEffects(run(1, 1, 0, 'unreported'), none, new Map([[task, 1]])).unreportedByLiveAgents).toBe(
      0,
    );
  });

  it('counts one attempt started by two processes', () => {
    const effects = [...run(1, 1, 0, 'unreported'), ...run(2, 1, 100, 'confirmed')];
    expect(judgeEffects(effects, new Map([[1, 50]]), new Map([[task, 1]])).doubleStarts).toBe(1);
  });
});
