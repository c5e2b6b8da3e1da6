import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';

let api: TestApi;
beforeAll(async () => {
  api = await createTestApi();
});
afterAll(() => api.drop());

/** percentile_cont, computed independently: linear interpolation between the closest ranks. */
function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = p * (sorted.length - 1);
  const lower = Math.floor(pos);
  const upper = Math.ceil(pos);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (pos - lower);
}

/**
 * 200 runs one minute apart from 2026-10-01T00:00Z: 70 % COMPLETED, 20 % FAILED, 10 % CANCELLED,
 * each with a build and a deploy step.
 */
async function seedHistory() {
  const { rows } = await api.db.query<{ id: string }>(
    `INSERT INTO workflows (name, definition) VALUES ('stats', '{"steps": []}') RETURNING id`,
  );
  const workflowId = rows[0]!.id;
  const base = Date.parse('2026-10-01T00:00:00Z');
  const runs = Array.from({ length: 200 }, (_, i) => {
    const status = i % 10 < 7 ? 'COMPLETED' : i % 10 < 9 ? 'FAILED' : 'CANCELLED';
    const start = base + i * 60_000;
    const duration = ((i * 37) % 1000) + 100;
    const cents = (i % 5) * 10 + 5;
    return {
      i,
      status,
      start,
      end: start + duration,
      duration,
      cost: `0.${String(cents).padStart(2, '0')}`,
    };
  });
  const steps = runs.flatMap((run) => [
    { run: run.i, key: 'build', status: 'DONE', duration: 50 + ((run.i * 13) % 200), retries: run.i % 3 },
    {
      run: run.i,
      key: 'deploy',
      status: run.status === 'FAILED' ? 'QUARANTINED' : run.status === 'CANCELLED' ? 'CANCELLED' : 'DONE',
      duration: 20 + ((run.i * 7) % 90),
      retries: run.status === 'FAILED' ? 3 : 0,
    },
  ]);
  await api.db.query(
    `WITH r AS (
         INSERT INTO workflow_runs (workflow_id, status, start_time, end_time, total_cost)
         SELECT $1, x.status, to_timestamp(x.start / 1000.0), to_timestamp(x."end" / 1000.0), x.cost::numeric
         FROM jsonb_to_recordset($2::jsonb) AS x(i int, status text, start float8, "end" float8, cost text)
         ORDER BY x.i
         RETURNING id, start_time
       ), numbered AS (
         SELECT id, (row_number() OVER (ORDER BY start_time)) - 1 AS i FROM r
       )
       INSERT INTO tasks (title, step_key, status, workflow_run_id, started_at, completed_at, retry_count)
       SELECT s.key, s.key, s.status, numbered.id, to_timestamp(0), to_timestamp(s.duration / 1000.0), s.retries
       FROM jsonb_to_recordset($3::jsonb) AS s(run int, key text, status text, duration float8, retries int)
       JOIN numbered ON numbered.i = s.run`,
    [workflowId, JSON.stringify(runs), JSON.stringify(steps)],
  );
  return { workflowId, base, runs, steps };
}

describe(`workflow statistics on ${backend}`, () => {
  it('match values computed independently over a seeded history of 200 runs', async () => {
    const { workflowId, base, runs, steps } = await seedHistory();
    const res = await api.call('GET', `/api/workflows/${workflowId}/stats`, {
      auth: await api.token('viewer'),
    });
    expect(res.status).toBe(200);
    const stats = (await res.json()) as {
      runs: number;
      completed: number;
      failed: number;
      cancelled: number;
      success_rate: number;
      duration_ms: { p50: number; p95: number };
      cost: { mean: string; total: string };
      steps: { key: string; p50_duration_ms: number; failure_rate: number; mean_retries: number }[];
    };
    const completed = runs.filter((r) => r.status === 'COMPLETED');
    expect(stats).toMatchObject({ runs: 200, completed: 140, failed: 40, cancelled: 20, running: 0 });
    expect(stats.success_rate).toBeCloseTo(140 / 200, 10);
    expect(stats.duration_ms.p50).toBeCloseTo(
      percentile(
        completed.map((r) => r.duration),
        0.5,
      )!,
      3,
    );
    expect(stats.duration_ms.p95).toBeCloseTo(
      percentile(
        completed.map((r) => r.duration),
        0.95,
      )!,
      3,
    );
    const cents = (list: typeof runs) => list.reduce((sum, r) => sum + Math.round(Number(r.cost) * 100), 0);
    expect(Number(stats.cost.total)).toBe(cents(runs) / 100);
    expect(Number(stats.cost.mean)).toBeCloseTo(cents(completed) / 100 / completed.length, 10);

    for (const key of ['build', 'deploy']) {
      const mine = steps.filter((s) => s.key === key);
      const done = mine.filter((s) => s.status === 'DONE');
      const finished = mine.filter((s) => s.status === 'DONE' || s.status === 'QUARANTINED');
      const step = stats.steps.find((s) => s.key === key)!;
      expect(step.p50_duration_ms).toBeCloseTo(
        percentile(
          done.map((s) => s.duration),
          0.5,
        )!,
        3,
      );
      expect(step.failure_rate).toBeCloseTo(
        finished.filter((s) => s.status === 'QUARANTINED').length / finished.length,
        10,
      );
      expect(step.mean_retries).toBeCloseTo(mine.reduce((sum, s) => sum + s.retries, 0) / mine.length, 10);
    }

    const since = new Date(base + 100 * 60_000).toISOString();
    const recent = (await (
      await api.call('GET', `/api/workflows/${workflowId}/stats?since=${encodeURIComponent(since)}`, {
        auth: await api.token('viewer'),
      })
    ).json()) as { runs: number };
    expect(recent.runs).toBe(100);
    const bad = await api.call('GET', `/api/workflows/${workflowId}/stats?since=yesterday`, {
      auth: await api.token('viewer'),
    });
    expect(bad.status).toBe(400);
  });

  it('group the runs by the hour (or minute, or day) they started, oldest first, with each bucket’s percentiles', async () => {
    const { workflowId, base, runs } = await seedHistory();
    const viewer = await api.token('viewer');
    const res = await api.call('GET', `/api/workflows/${workflowId}/stats?bucket=hour`, { auth: viewer });
    expect(res.status).toBe(200);
    const { over_time } = (await res.json()) as {
      over_time: {
        bucket: string;
        points: {
          start: string;
          runs: number;
          completed: number;
          failed: number;
          cancelled: number;
          duration_ms: { p50: number | null; p95: number | null };
          cost: { p50: string | null; p95: string | null; total: string | null };
        }[];
      };
    };
    expect(over_time.bucket).toBe('hour');
    // Runs i = 0..199 start i minutes after midnight: hours 00, 01, 02 hold 60 each, 03 the last 20.
    expect(over_time.points.map((p) => [p.start, p.runs])).toEqual([
      ['2026-10-01T00:00:00.000Z', 60],
      ['2026-10-01T01:00:00.000Z', 60],
      ['2026-10-01T02:00:00.000Z', 60],
      ['2026-10-01T03:00:00.000Z', 20],
    ]);
    /** percentile_disc: the first value whose cumulative share reaches p. */
    const discrete = (values: number[], p: number) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
    };
    over_time.points.forEach((point, hour) => {
      const mine = runs.filter((r) => Math.floor((r.start - base) / 3_600_000) === hour);
      const completed = mine.filter((r) => r.status === 'COMPLETED');
      expect(point).toMatchObject({
        completed: completed.length,
        failed: mine.filter((r) => r.status === 'FAILED').length,
        cancelled: mine.filter((r) => r.status === 'CANCELLED').length,
      });
      expect(point.duration_ms.p50).toBeCloseTo(
        percentile(
          completed.map((r) => r.duration),
          0.5,
        )!,
        3,
      );
      expect(point.duration_ms.p95).toBeCloseTo(
        percentile(
          completed.map((r) => r.duration),
          0.95,
        )!,
        3,
      );
      const cents = completed.map((r) => Math.round(Number(r.cost) * 100));
      expect(Math.round(Number(point.cost.p50) * 100)).toBe(discrete(cents, 0.5));
      expect(Math.round(Number(point.cost.p95) * 100)).toBe(discrete(cents, 0.95));
      const total = mine.reduce((sum, r) => sum + Math.round(Number(r.cost) * 100), 0);
      expect(Math.round(Number(point.cost.total) * 100)).toBe(total);
    });

    const byDay = (await (
      await api.call('GET', `/api/workflows/${workflowId}/stats`, { auth: viewer })
    ).json()) as { over_time: { bucket: string; points: { start: string; runs: number }[] } };
    expect(byDay.over_time).toEqual({
      bucket: 'day',
      points: [expect.objectContaining({ start: '2026-10-01T00:00:00.000Z', runs: 200 })],
    });
    const byMinute = (await (
      await api.call('GET', `/api/workflows/${workflowId}/stats?bucket=minute`, { auth: viewer })
    ).json()) as { over_time: { points: { start: string; runs: number }[] } };
    expect(byMinute.over_time.points).toHaveLength(200);
    expect(byMinute.over_time.points.at(-1)?.start).toBe('2026-10-01T03:19:00.000Z');

    const bad = await api.call('GET', `/api/workflows/${workflowId}/stats?bucket=week`, { auth: viewer });
    expect(bad.status).toBe(400);
  });
});
