import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backend, createTestDatabase, type TestDatabase } from '../../../test/db';
import { connectPostgres, type Db } from './client';
import { listDeliveries } from './deliveries';
import {
  forgetOldGithubDeliveries,
  githubDeliveryRuns,
  recordGithubDelivery,
  setGithubDeliveryRuns,
  workflowsTriggeredBy,
} from './github-deliveries';
import { GITHUB_CHANNEL, getGithubRun, linkGithubRun, recordGithubCheckRun } from './github-runs';
import { insertWorkflow } from './workflows';

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
});

afterAll(async () => {
  await database?.drop();
});

const delivery = (deliveryId = randomUUID()) => ({
  deliveryId,
  event: 'pull_request',
  action: 'opened',
  repository: 'acme/app',
});

async function newRun(): Promise<string> {
  const workflow = await insertWorkflow(db, {
    name: `wf-${randomUUID()}`,
    description: null,
    definition: { steps: [{ key: 'a', title: 'A' }] },
    createdBy: null,
  });
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO workflow_runs (workflow_id, status, trigger_context) VALUES ($1, 'RUNNING', '{}') RETURNING id`,
    [workflow.id],
  );
  return rows[0]!.id;
}

describe(`GitHub tables on ${backend}`, () => {
  it('records a delivery once: the same id again is a replay that reads the runs the first started', async () => {
    const input = delivery();
    const runId = await newRun();
    await db.transaction(async (tx) => {
      expect(await recordGithubDelivery(tx, input)).toBe(true);
      await setGithubDeliveryRuns(tx, input.deliveryId, [runId]);
    });
    expect(await db.transaction((tx) => recordGithubDelivery(tx, input))).toBe(false);
    expect(await githubDeliveryRuns(db, input.deliveryId)).toEqual([runId]);
  });

  it('lets exactly one of two processes given the same delivery at once record it', async () => {
    const input = delivery();
    // Two pools stand for two API replicas; on PGlite the one connection serializes them anyway.
    const pools = database.url
      ? [connectPostgres(database.url, { max: 1 }), connectPostgres(database.url, { max: 1 })]
      : [db, db];
    try {
      const outcomes = await Promise.all(
        pools.map((pool) =>
          pool.transaction(async (tx) => {
            const fresh = await recordGithubDelivery(tx, input);
            // Hold the transaction open a moment, as starting the runs would.
            await tx.query('SELECT pg_sleep(0.05)');
            return fresh;
          }),
        ),
      );
      expect(outcomes.sort()).toEqual([false, true]);
    } finally {
      if (database.url) await Promise.all(pools.map((p) => p.close()));
    }
  });

  it('forgets deliveries older than the given age, at most the given number', async () => {
    const old = [delivery(), delivery(), delivery()];
    for (const d of old) await db.transaction((tx) => recordGithubDelivery(tx, d));
    await db.query(
      `UPDATE github_deliveries SET received_at = now() - interval '40 days' WHERE delivery_id = ANY ($1::text[])`,
      [old.map((d) => d.deliveryId)],
    );
    expect(await forgetOldGithubDeliveries(db, { olderThanDays: 30, limit: 2 })).toBe(2);
    expect(await forgetOldGithubDeliveries(db, { olderThanDays: 30, limit: 2 })).toBe(1);
    expect(await forgetOldGithubDeliveries(db, { olderThanDays: 30, limit: 2 })).toBe(0);
  });

  it('finds the workflows with a GitHub trigger for an event, and no others', async () => {
    const trigger = (event: string) => ({ github: { event, repository: 'acme/app' } });
    const pr = await insertWorkflow(db, {
      name: 'on-pr',
      description: null,
      definition: { steps: [{ key: 'a', title: 'A' }], triggers: [trigger('push'), trigger('pull_request')] },
      createdBy: null,
    });
    await insertWorkflow(db, {
      name: 'on-push',
      description: null,
      definition: { steps: [{ key: 'a', title: 'A' }], triggers: [trigger('push')] },
      createdBy: null,
    });
    const found = await workflowsTriggeredBy(db, 'pull_request');
    expect(found.map((w) => w.id)).toEqual([pr.id]);
  });

  it('queues the check run when a run is linked, and its completion and comment when the run ends, once', async () => {
    const runId = await newRun();
    await db.transaction((tx) =>
      linkGithubRun(tx, {
        workflow_run_id: runId,
        repository: 'Acme/App',
        head_sha: 'a'.repeat(40),
        pull_request_number: 7,
        workflow_name: 'ci',
        check_run: true,
        comment: true,
      }),
    );
    const keysOf = async () =>
      (await listDeliveries(db, { channel: GITHUB_CHANNEL, limit: 1000 }))
        .filter((d) => d.payload.workflow_run_id === runId)
        .map((d) => `${d.dedupe_key.replace(runId, 'RUN')} ${d.target} ${d.payload.kind}`);
    expect(await keysOf()).toEqual(['check_run:RUN:start acme/app check_run']);

    await db.query(`UPDATE workflow_runs SET status = 'FAILED', end_time = now() WHERE id = $1`, [runId]);
    // A later change of a finished run queues nothing more.
    await db.query(`UPDATE workflow_runs SET status = 'CANCELLED' WHERE id = $1`, [runId]);
    expect(await keysOf()).toEqual([
      'check_run:RUN:start acme/app check_run',
      'check_run:RUN:end acme/app check_run',
      'comment:RUN acme/app comment',
    ]);

    await recordGithubCheckRun(db, runId, { checkRunId: 42, completed: true });
    expect(await getGithubRun(db, runId)).toMatchObject({ check_run_id: 42, pull_request_number: 7 });
  });

  it('queues nothing for a run not linked to GitHub, nor a comment the workflow did not ask for', async () => {
    const plain = await newRun();
    const linked = await newRun();
    await db.transaction((tx) =>
      linkGithubRun(tx, {
        workflow_run_id: linked,
        repository: 'acme/app',
        head_sha: 'b'.repeat(40),
        pull_request_number: null,
        workflow_name: 'ci',
        check_run: true,
        comment: false,
      }),
    );
    await db.query(`UPDATE workflow_runs SET status = 'COMPLETED' WHERE id = ANY ($1::uuid[])`, [
      [plain, linked],
    ]);
    const rows = await listDeliveries(db, { channel: GITHUB_CHANNEL, limit: 1000 });
    expect(rows.filter((d) => d.payload.workflow_run_id === plain)).toEqual([]);
    expect(rows.filter((d) => d.payload.workflow_run_id === linked).map((d) => d.payload.kind)).toEqual([
      'check_run',
      'check_run',
    ]);
  });
});
