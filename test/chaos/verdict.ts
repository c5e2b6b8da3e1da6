// The chaos test's verdict: what the database holds at the end and what the agents' effect logs
// say, against what the harness itself saw (kills, confirmed creations, expected costs).
import { judgeEffects, readEffects } from './effects';

/** Runs one query on the test's database. */
export type Query = <R extends object>(text: string, values?: unknown[]) => Promise<R[]>;

/** What the harness knows that the database does not. */
export interface RunFacts {
  effectsDir: string;
  /** pid → when the test sent it SIGKILL. */
  killedAt: ReadonlyMap<number, number>;
  /** Agent id → when the test killed its process. */
  killedAgents: ReadonlyMap<string, number>;
  /** Workflow run id → the exact total of the costs its steps report. */
  expectedCost: ReadonlyMap<string, string>;
  /** Plain tasks whose creation the harness saw confirmed (a 201, or found after an unknown outcome). */
  plainConfirmed: number;
  plainWanted: number;
  batchSize: number;
  runsWanted: number;
  apiCrashes: number;
}

export interface Verdict {
  /** `created=N done=N lost=N duplicate_after_done=N rerun_after_finished=N api_crashes=N recovered_by_lease=N` */
  line: string;
  /** Empty when the run passed. */
  failures: string[];
  /** Details worth printing either way. */
  report: string[];
}

/**
 * Judges a settled run.
 * @example
 * const { line, failures } = await judgeRun((text, values) => pool.query(text, values).then((r) => r.rows), facts);
 */
export async function judgeRun(query: Query, facts: RunFacts): Promise<Verdict> {
  const failures: string[] = [];
  const statuses = Object.fromEntries(
    (
      await query<{ status: string; n: number }>(
        'SELECT status, count(*)::int AS n FROM tasks GROUP BY status ORDER BY status',
      )
    ).map((r) => [r.status, r.n]),
  );
  const created = Object.values(statuses).reduce((a, b) => a + b, 0);
  const done = statuses.DONE ?? 0;
  const lost = created - done;
  const [plain] = await query<{ n: number }>(
    "SELECT count(*)::int AS n FROM tasks WHERE payload ? 'chaos_batch'",
  );
  const unevenBatches = await query<{ batch: string; n: number }>(
    `SELECT payload->>'chaos_batch' AS batch, count(*)::int AS n FROM tasks WHERE payload ? 'chaos_batch'
      GROUP BY 1 HAVING count(*) <> $1`,
    [facts.batchSize],
  );
  const [unsent] = await query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL');
  const runs = await query<{
    id: string;
    status: string;
    total_cost: string | null;
    steps_cost: string | null;
    steps: number;
    exact: boolean;
  }>(
    `SELECT r.id, r.status, r.total_cost::text AS total_cost, s.cost::text AS steps_cost, s.steps,
            coalesce(r.total_cost = s.cost AND r.total_cost = (($1::jsonb)->>r.id::text)::numeric, false) AS exact
       FROM workflow_runs r
       CROSS JOIN LATERAL (
         SELECT sum(t.cost) AS cost, count(*)::int AS steps FROM tasks t WHERE t.workflow_run_id = r.id
       ) s`,
    [JSON.stringify(Object.fromEntries(facts.expectedCost))],
  );
  const doneAttempts = await query<{ id: string; attempt: number }>(
    "SELECT task_id AS id, attempt FROM task_attempts WHERE outcome = 'DONE'",
  );
  // Tasks with a later attempt, started after the test killed the agent of an earlier one.
  const [recovered] = await query<{ n: number }>(
    `SELECT count(DISTINCT earlier.task_id)::int AS n
       FROM task_attempts earlier
       JOIN unnest($1::uuid[], $2::timestamptz[]) AS killed(agent_id, at) ON killed.agent_id = earlier.agent_id
       JOIN task_attempts later
         ON later.task_id = earlier.task_id AND later.attempt > earlier.attempt AND later.started_at > killed.at`,
    [[...facts.killedAgents.keys()], [...facts.killedAgents.values()].map((t) => new Date(t).toISOString())],
  );

  const effects = readEffects(facts.effectsDir);
  const judged = judgeEffects(effects, facts.killedAt, new Map(doneAttempts.map((r) => [r.id, r.attempt])));

  const report = [
    `Tasks by status: ${JSON.stringify(statuses)}`,
    `Plain tasks: ${plain?.n ?? 0} in the database, ${facts.plainConfirmed} confirmed by the harness. Runs: ${runs.length}.`,
    `Effects logged: ${effects.length}; outcomes finished by agents the test never killed with no answer to their report logged: ${judged.unreportedByLiveAgents}; attempts started by two processes: ${judged.doubleStarts}`,
    ...judged.examples.map((example) => `  ${example}`),
  ];

  if (lost !== 0) {
    const open = await query<{
      id: string;
      status: string;
      attempt: number;
      what: string;
      last_error: string | null;
    }>(
      `SELECT id, status, attempt, coalesce('step ' || step_key, capability, '') AS what, last_error
         FROM tasks WHERE status <> 'DONE' ORDER BY status LIMIT 8`,
    );
    const examples = open.map(
      (t) =>
        `${t.id} ${t.status} attempt ${t.attempt} ${t.what}${t.last_error ? ` (${t.last_error.slice(0, 80)})` : ''}`,
    );
    failures.push(`lost=${lost}: tasks not DONE, e.g. ${examples.join('; ')}`);
  }
  if (judged.duplicateAfterDone !== 0) failures.push(`duplicate_after_done=${judged.duplicateAfterDone}`);
  if (judged.rerunAfterFinished !== 0) failures.push(`rerun_after_finished=${judged.rerunAfterFinished}`);
  if (facts.apiCrashes !== 0) failures.push(`api_crashes=${facts.apiCrashes}`);
  if (judged.doubleStarts !== 0)
    failures.push(`${judged.doubleStarts} attempts were started by two processes`);
  if (judged.unreportedByLiveAgents !== 0)
    failures.push(
      `${judged.unreportedByLiveAgents} outcomes were finished by agents the test never killed and never answered: dropped`,
    );
  if ((plain?.n ?? 0) < facts.plainWanted)
    failures.push(`only ${plain?.n ?? 0} of ${facts.plainWanted} plain tasks were created`);
  if ((plain?.n ?? 0) !== facts.plainConfirmed)
    failures.push(
      `${plain?.n ?? 0} plain tasks in the database but ${facts.plainConfirmed} confirmed: counting is off`,
    );
  for (const b of unevenBatches) failures.push(`batch ${b.batch} has ${b.n} tasks, not ${facts.batchSize}`);
  if (runs.length < facts.runsWanted)
    failures.push(`only ${runs.length} workflow runs (at least ${facts.runsWanted} wanted)`);
  for (const run of runs) {
    if (run.status !== 'COMPLETED' || !run.exact || run.steps !== 4) {
      failures.push(
        `run ${run.id}: ${run.status}, total_cost ${run.total_cost}, its ${run.steps} steps' costs add up to ${run.steps_cost}, expected ${facts.expectedCost.get(run.id) ?? '(unknown run)'}`,
      );
    }
  }
  if ((statuses.TODO ?? 0) + (statuses.IN_PROGRESS ?? 0) > 0)
    failures.push(`left open: TODO=${statuses.TODO ?? 0} IN_PROGRESS=${statuses.IN_PROGRESS ?? 0}`);
  if ((unsent?.n ?? 0) > 0) failures.push(`${unsent?.n} outbox rows unsent`);

  return {
    line: `created=${created} done=${done} lost=${lost} duplicate_after_done=${judged.duplicateAfterDone} rerun_after_finished=${judged.rerunAfterFinished} api_crashes=${facts.apiCrashes} recovered_by_lease=${recovered?.n ?? 0}`,
    failures,
    report,
  };
}
