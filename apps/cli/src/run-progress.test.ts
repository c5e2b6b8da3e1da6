import { describe, expect, it } from 'vitest';
import { parseVars } from './commands/trigger';
import { type RunDetail, RunProgress } from './run-progress';

const step = (step_key: string, status: string, duration_ms: number | null = null) => ({
  task_id: `t-${step_key}`,
  step_key,
  status,
  attempts: status === 'PENDING' ? 0 : 1,
  duration_ms,
  last_error: null,
});
const run = (status: RunDetail['status'], steps: RunDetail['steps']): RunDetail => ({
  id: 'r1',
  status,
  duration_ms: status === 'RUNNING' ? null : 1200,
  total_cost: null,
  steps,
});

describe('RunProgress', () => {
  it('on a terminal redraws the block in place and leaves an ended run on the screen', () => {
    const out: string[] = [];
    const progress = new RunProgress((text) => out.push(text), true, 'ci');
    expect(progress.update(run('RUNNING', [step('build', 'IN_PROGRESS'), step('ship', 'PENDING')]))).toBe(
      false,
    );
    expect(out).toEqual(['run r1  ci  RUNNING  0/2 steps\n  ▶ build  IN_PROGRESS\n  · ship   PENDING']);
    expect(progress.update(run('COMPLETED', [step('build', 'DONE', 300), step('ship', 'DONE', 900)]))).toBe(
      true,
    );
    // Up three lines (the block), erase; the final state is printed once and no block follows.
    expect(out.slice(1)).toEqual([
      '\x1b[3F\x1b[J\x1b[1A',
      'run r1  ci  COMPLETED  2/2 steps  1.2s\n  ✓ build  DONE         300ms\n  ✓ ship   DONE         900ms',
    ]);
  });

  it('elsewhere prints a line per change only', () => {
    const out: string[] = [];
    const progress = new RunProgress((text) => out.push(text), false, 'ci');
    progress.update(run('RUNNING', [step('build', 'IN_PROGRESS'), step('ship', 'PENDING')]));
    progress.update(run('RUNNING', [step('build', 'IN_PROGRESS'), step('ship', 'PENDING')]));
    progress.update(run('FAILED', [step('build', 'QUARANTINED'), step('ship', 'CANCELLED')]));
    expect(out).toEqual([
      'run r1  step build  IN_PROGRESS',
      'run r1  step ship  PENDING',
      'run r1  ci  RUNNING  0/2 steps',
      'run r1  step build  QUARANTINED',
      'run r1  step ship  CANCELLED',
      'run r1  ci  FAILED  0/2 steps  1.2s',
    ]);
  });
});

describe('parseVars', () => {
  it('reads text for strings and JSON for the declared other types', () => {
    expect(
      parseVars(['branch=a=b', 'n=3', 'on=true', 'list=[1]'], {
        n: { type: 'number' },
        on: { type: 'boolean' },
        list: { type: 'array' },
      }),
    ).toEqual({ branch: 'a=b', n: 3, on: true, list: [1] });
    expect(() => parseVars(['n=three'], { n: { type: 'number' } })).toThrow(/--var n: .*number.*JSON/);
    expect(() => parseVars(['=x'])).toThrow(/--var must be name=value/);
  });
});
