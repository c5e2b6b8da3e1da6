import { Writable } from 'node:stream';
import type { Consumer } from '@devart/queue';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { backend } from '../../../test/db';
import { brokerKind, createTestPlatform, type TestPlatform } from '../../../test/platform';

let platform: TestPlatform | undefined;
afterEach(async () => {
  await platform?.close();
  platform = undefined;
});

/** A pino logger that keeps its lines, to check what was logged. */
function capturingLogger() {
  const lines: { level: number; msg: string; task_id?: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

describe(`reconciler on ${backend} + ${brokerKind}`, () => {
  it('republishes TODO tasks whose messages were lost, once per threshold, counted in /metrics and logged per task; leaves started and fresh tasks alone', async () => {
    const { logger, lines } = capturingLogger();
    // The timer is effectively off: the test runs the passes itself, and ages the tasks itself
    // (a real wait would race a loaded machine).
    platform = await createTestPlatform({ logger, reconcile: { afterSeconds: 60, intervalMs: 3_600_000 } });
    const p = platform;
    // A consumer that acknowledges and drops: the messages are gone, as from a purged queue.
    const queue = await p.broker.ensureTaskQueue('lossy');
    const swallowed: string[] = [];
    let blackHole: Consumer | undefined = await p.broker.consume(queue, { prefetch: 50 }, (d) => {
      swallowed.push(d.messageId);
      d.ack();
    });
    const lost = await p.createTasks(3, { capability: 'lossy' });
    const holder = await p.registerAgent(['held'], 'holder');
    const [held] = await p.createTasks(1, { capability: 'held' });
    await p.waitFor('the three messages to be swallowed', async () => swallowed.length === 3);
    const start = await p.call('POST', `/api/tasks/${held}/start`, {
      auth: holder.apiKey,
      body: { attempt: 1 },
    });
    expect(start.status).toBe(200);

    // Younger than the threshold: nothing is lost yet.
    expect(await p.reconciler.reconcileNow()).toEqual([]);
    // Two minutes pass for the lost and the started tasks, not for the fresh one.
    await p.db.query(`UPDATE tasks SET updated_at = updated_at - interval '2 minutes' WHERE id = ANY($1)`, [
      [...lost, held],
    ]);
    await blackHole.cancel();
    blackHole = undefined;
    const fresh = await p.createTasks(1, { capability: 'lossy' });

    const republished = await p.reconciler.reconcileNow();
    expect(republished.sort()).toEqual([...lost].sort());
    // Republished once: the next pass within the threshold finds nothing.
    expect(await p.reconciler.reconcileNow()).toEqual([]);

    const agent = await p.registerAgent(['lossy'], 'worker');
    const runs: { id: string; attempt: number }[] = [];
    await p.startAgent(
      agent,
      (task) => {
        runs.push({ id: task.task_id, attempt: task.attempt });
        return { result: 'found' };
      },
      { capabilities: ['lossy'] },
    );
    await p.waitFor('the lost and the fresh tasks DONE', async () => {
      const { rows } = await p.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE' AND capability = 'lossy'`,
      );
      return rows[0]!.n === 4;
    });
    // The same attempt, so the same message id: a late original would be fenced off by start.
    expect(runs.map((r) => r.attempt)).toEqual([1, 1, 1, 1]);
    expect(runs.map((r) => r.id).sort()).toEqual([...lost, ...fresh].sort());
    const { rows: heldRow } = await p.db.query<{ status: string }>('SELECT status FROM tasks WHERE id = $1', [
      held,
    ]);
    expect(heldRow[0]!.status).toBe('IN_PROGRESS');

    const metrics = await (await p.call('GET', '/metrics')).text();
    expect(metrics).toMatch(/^devart_tasks_republished_total 3$/m);
    const warned = lines.filter((l) => l.msg.startsWith('task message lost'));
    expect(warned.map((l) => l.task_id).sort()).toEqual([...lost].sort());
  });
});
