import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { expectProblem } from '../../../test/http';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

interface Family {
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/**
 * A strict reader of the Prometheus text exposition format (0.0.4), as promtool checks it: HELP and
 * TYPE once per family and before its samples, well-formed names, labels and values, histograms
 * with cumulative buckets ending in +Inf equal to _count.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sample = new RegExp(`^(${name})(?:\\{(.*)\\})? (-?[0-9.eE+-]+|NaN|\\+Inf|-Inf)(?: -?\\d+)?$`);
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/g;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, family, rest] = meta;
      if (kind === 'TYPE') {
        expect(families.has(family!), `TYPE of ${family} given twice`).toBe(false);
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped']).toContain(rest);
        families.set(family!, { type: rest!, samples: [] });
      }
      continue;
    }
    const m = sample.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const [, sampleName, rawLabels = '', value] = m!;
    const family =
      families.get(sampleName!) ?? families.get(sampleName!.replace(/_(bucket|sum|count|total)$/, ''));
    expect(family, `sample ${sampleName} before its TYPE`).toBeDefined();
    const labels: Record<string, string> = {};
    for (const [, k, v] of rawLabels.matchAll(label)) labels[k!] = v!;
    family!.samples.push({ name: sampleName!, labels, value: Number(value) });
  }
  for (const [familyName, family] of families) {
    if (family.type !== 'histogram') continue;
    const buckets = family.samples.filter((s) => s.name === `${familyName}_bucket`);
    const series = new Map<string, number[]>();
    for (const b of buckets) {
      const { le: _le, ...rest } = b.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), b.value]);
    }
    for (const [key, values] of series) {
      expect(values, `${familyName} buckets must be cumulative`).toEqual([...values].sort((a, b) => a - b));
      const count = family.samples.find(
        (s) => s.name === `${familyName}_count` && JSON.stringify(s.labels) === key,
      );
      expect(values.at(-1)).toBe(count?.value);
    }
  }
  return families;
}

const value = (families: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  families
    .get(name.replace(/_(count|sum)$/, ''))
    ?.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    ?.value;

describe(`/metrics on ${backend} + ${brokerKind}`, () => {
  it('scrapes as valid Prometheus text with task, agent, outbox and workflow figures that match the database', async () => {
    platform = await createTestPlatform();
    const agent = await platform.registerAgent(['echo']);
    await platform.startAgent(agent, () => ({ result: 'ok', cost: '0.25' }), {
      capabilities: ['echo'],
      concurrency: 4,
    });
    await platform.createTasks(20, { capability: 'echo' });
    const workflow = await platform.call('POST', '/api/workflows', {
      auth: await platform.token('supervisor'),
      body: {
        name: 'two steps',
        steps: [
          { key: 'a', title: 'A', capability: 'echo' },
          { key: 'b', title: 'B', capability: 'echo', depends_on: ['a'] },
        ],
      },
    });
    const { id } = (await workflow.json()) as { id: string };
    await platform.call('POST', `/api/workflows/${id}/trigger`, {
      auth: await platform.token('supervisor'),
      body: {},
    });
    await platform.waitFor('everything DONE', async () => {
      const { rows } = await platform!.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE'",
      );
      const runs = await platform!.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'COMPLETED'",
      );
      return rows[0]!.n === 22 && runs.rows[0]!.n === 1;
    });
    await platform.relay.drain();

    const res = await platform.call('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = parseExposition(await res.text());
    expect(value(families, 'devart_tasks', { status: 'DONE', capability: 'echo' })).toBe(22);
    expect(value(families, 'devart_agents', { status: 'IDLE' })).toBe(1);
    expect(value(families, 'devart_outbox_pending')).toBe(0);
    expect(value(families, 'devart_task_duration_seconds_count', { capability: 'echo' })).toBe(22);
    expect(value(families, 'devart_task_enqueue_to_start_seconds_count')).toBe(22);
    expect(value(families, 'devart_workflow_run_duration_seconds_count')).toBe(1);
    expect(value(families, 'devart_workflow_run_cost_total')).toBeCloseTo(0.5, 10);
    expect(families.get('devart_process_resident_memory_bytes')?.type).toBe('gauge');
  });

  it('with METRICS_TOKEN, answers only a scrape that sends it as a bearer token; others get 401 problem+json', async () => {
    const token = 'scrape-7f3c9a1e52b04d6e';
    platform = await createTestPlatform({ settings: { metricsToken: token } });
    const p = platform;
    const refused: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${token.slice(0, -1)}` },
      { authorization: `Bearer ${token}x` },
      { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` },
      { authorization: token },
      // A user's admin JWT is not the scrape token.
      { authorization: `Bearer ${await p.token('admin')}` },
    ];
    for (const headers of refused) {
      const res = await p.call('GET', '/metrics', { headers });
      const problem = await expectProblem(res, 401, 'unauthenticated');
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="metrics"');
      expect(JSON.stringify(problem)).not.toContain(token);
    }
    for (const authorization of [`Bearer ${token}`, `bearer ${token}`]) {
      const res = await p.call('GET', '/metrics', { headers: { authorization } });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('# TYPE devart_tasks gauge');
    }
    // /health and /ready stay open for probes.
    expect((await p.call('GET', '/health')).status).toBe(200);
    expect((await p.call('GET', '/ready')).status).toBe(200);
  });
});
