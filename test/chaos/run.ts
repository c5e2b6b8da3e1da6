// npm run test:chaos — the platform under faults, end to end, in at most five minutes.
//
// It starts what it breaks: a PostgreSQL of its own (test/throwaway-postgres.ts), a RabbitMQ vhost
// and user of its own (management API), two API processes (`devart start`) and four SDK agent
// processes (test/chaos/agent.ts). While 2,000 tasks and 24 runs of a diamond workflow go through,
// it kills agents, kills one API process, closes every broker connection of its vhost, deletes a
// task queue, restarts PostgreSQL fast and later kills its postmaster. Then it waits for the
// platform to settle and judges the database and the agents' effect logs. The last line is
//   created=N done=N lost=N duplicate_after_done=N rerun_after_finished=N api_crashes=N recovered_by_lease=N
// and the exit code is non-zero unless nothing was lost, run twice or crashed, every run completed
// with its exact cost, and nothing is left open or unsent.
//
// Loopback only. RABBITMQ_MANAGEMENT_URL (default http://guest:guest@127.0.0.1:15672) must be an
// administrator; AMQP goes to 127.0.0.1:5672.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { signUserToken } from '../../apps/api/src/auth/jwt';
import { freePort } from '../devart-process';
import { startThrowawayPostgres, type ThrowawayPostgres } from '../throwaway-postgres';
import { judgeEffects, readEffects } from './effects';
import { countLines, crashReason, summarizeLogs, tail } from './logs';
import { chaosVhost } from './rabbit';
import { judgeRun } from './verdict';

// ---------------------------------------------------------------- settings
/** Everything, set-up and clean-up included, ends before this (the budget is five minutes). */
const HARD_LIMIT_MS = 290_000;
/** Waiting for the platform to settle stops here, leaving time to judge and clean up. */
const SETTLE_LIMIT_MS = 250_000;
const PLAIN_TASKS = 2000;
const BATCH = 50;
/** Between task batches: spreads the load over the fault schedule instead of finishing before it. */
const BATCH_PACE_MS = 1500;
const RUNS = 24;
const RUN_PACE_MS = 2500;
const AGENTS = 4;
const AGENT_CONCURRENCY = 4;
const LEASE_SECONDS = 10;
/** From the start of the load: agents are killed every few seconds until then. */
const AGENT_KILLS_UNTIL_MS = 70_000;
const TASK_CAPABILITY = 'chaos';
/** Settling gives up early when nothing at all changed for this long (a lease is 10 s, a retry ≤ 2 s). */
const STALL_MS = 60_000;

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/devart.mjs');
const agentScript = join(import.meta.dirname, 'agent.ts');
const managementUrl = new URL(process.env.RABBITMQ_MANAGEMENT_URL ?? 'http://guest:guest@127.0.0.1:15672');

// ---------------------------------------------------------------- state
const t0 = Date.now();
const dir = mkdtempSync(join(tmpdir(), 'devart-chaos-'));
const effectsDir = join(dir, 'effects');
mkdirSync(effectsDir);
const runId = randomBytes(4).toString('hex');
const vhost = chaosVhost(managementUrl, `devart-chaos-${runId}`);
const jwtSecret = randomBytes(32).toString('hex');

const stats = {
  plainCreated: 0,
  createdAfterUnknownOutcome: 0,
  createRetries: 0,
  runsTriggered: 0,
  agentKills: 0,
  agentCrashes: 0,
  apiKills: 0,
  apiCrashes: 0,
  connectionCloses: 0,
  queueDeletes: 0,
  pgRestarts: 0,
  pgKills: 0,
};
const failures: string[] = [];
const notes: string[] = [];
/** pid → when the test sent SIGKILL. */
const killedAt = new Map<number, number>();
/** Agent id (from registration) → when the test killed its process. */
const killedAgents = new Map<string, number>();
const registeredAgentIds: string[] = [];
/** Every child still running, by pid, so clean-up can end exactly those. */
const children = new Map<number, { name: string; child: ChildProcess }>();
/** Set once the run ends (or is cut short): loads, faults and restarts stop. */
let shuttingDown = false;
/** The fault being injected now; clean-up waits for it, so it never stops a PostgreSQL that is restarting. */
let faultInFlight: Promise<void> | undefined;
let ticker: NodeJS.Timeout | undefined;
let pgsrv: ThrowawayPostgres | undefined;
let pool: pg.Pool | undefined;

const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (message: string) => console.log(`[${elapsed()}] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

// ---------------------------------------------------------------- helpers
/** One query on the test's own database; rejects (quickly) while it is down. */
async function query<R extends object>(text: string, values?: unknown[]): Promise<R[]> {
  if (!pool) throw new Error('no database yet');
  return (await pool.query(text, values)).rows as R[];
}

/** Retries a query until the database answers or `until` passes. */
async function queryWhenUp<R extends object>(
  text: string,
  values: unknown[] | undefined,
  until: number,
): Promise<R[]> {
  for (;;) {
    try {
      return await query<R>(text, values);
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(300);
    }
  }
}

// ---------------------------------------------------------------- API processes
interface ApiProcess {
  index: number;
  port: number;
  url: string;
  log: string;
  child?: ChildProcess;
  /** Set before the test kills it, so its exit is not counted as a crash. */
  killedByTest: boolean;
}
const apis: ApiProcess[] = [];
let apiEnv: NodeJS.ProcessEnv = {};

/** The environment without anything that would point a child at another database or broker. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([key]) =>
      !/^(DATABASE_URL|AMQP_|AGENT_AMQP_URL|RABBITMQ_|JWT_|TASK_LEASE|REAPER|RETRY_|DEVART_|SANDBOX_|PORT$|HOST$|LOG_LEVEL)/.test(
        key,
      ),
  ),
);

function spawnLogged(name: string, logFile: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  writeSync(fd, `\n--- ${name} started at ${elapsed()} ---\n`);
  // Detached: a Ctrl-C in the terminal reaches this harness only, which ends its children itself.
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  if (child.pid) children.set(child.pid, { name, child });
  child.once('exit', () => {
    if (child.pid) children.delete(child.pid);
  });
  return child;
}

function startApi(api: ApiProcess): void {
  api.killedByTest = false;
  const child = spawnLogged(
    `api-${api.index}`,
    api.log,
    [bin, 'start', '--port', String(api.port), '--agents', '0'],
    { ...apiEnv, DEVART_DATA_DIR: join(dir, `api-${api.index}`) },
  );
  api.child = child;
  child.once('exit', (code, signal) => {
    if (shuttingDown || api.killedByTest) return;
    // Not the test's doing: a crash. Counted, then restarted so the run can go on.
    stats.apiCrashes++;
    say(
      `API ${api.index} (pid ${child.pid}) EXITED ON ITS OWN (code ${code}, signal ${signal}): crash counted, restarting`,
    );
    notes.push(
      `API ${api.index} pid ${child.pid} crashed at ${elapsed()} (code ${code}, signal ${signal}): ${crashReason(api.log)}`,
    );
    setTimeout(() => {
      if (!shuttingDown) startApi(api);
    }, 200);
  });
}

async function waitHealthy(api: ApiProcess, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${api.url}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > until)
      throw new Error(`API ${api.index} not healthy after ${timeoutMs} ms (see ${api.log})`);
    await sleep(200);
  }
}

let adminToken = '';
let nextApi = 0;
/**
 * An HTTP call to the API: to one process, or the other when it cannot be reached (what a load
 * balancer in front of replicas does). Rejects when neither answers.
 */
async function apiCall(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const first = nextApi++;
  let lastError: unknown;
  for (let i = 0; i < apis.length; i++) {
    const api = apis[(first + i) % apis.length]!;
    try {
      const res = await fetch(`${api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: keep the text for the report.
      }
      return { status: res.status, body: parsed };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------- agent processes
interface AgentProcess {
  slot: number;
  agentId: string;
  child: ChildProcess;
  killedByTest: boolean;
}
const agents: (AgentProcess | undefined)[] = [];
let agentSeq = 0;

/** Registers an agent through the API, retrying through outages until `until`. */
async function registerAgent(
  name: string,
  until: number,
): Promise<{ id: string; apiKey: string; amqpUrl: string }> {
  for (;;) {
    try {
      const res = await apiCall('POST', '/api/agents', { name, capabilities: [TASK_CAPABILITY, 'wf'] });
      if (res.status === 201) {
        const body = res.body as { id: string; api_key: string; broker: { url: string } | null };
        if (!body.broker) throw new Error('POST /api/agents returned no broker credentials');
        registeredAgentIds.push(body.id);
        return { id: body.id, apiKey: body.api_key, amqpUrl: body.broker.url };
      }
      if (res.status < 500)
        throw new Error(`POST /api/agents answered ${res.status}: ${JSON.stringify(res.body)}`);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('POST /api/agents')) throw error;
    }
    if (Date.now() > until || shuttingDown) throw new Error(`could not register agent ${name} in time`);
    await sleep(500);
  }
}

async function spawnAgent(slot: number): Promise<void> {
  if (shuttingDown) return;
  const seq = agentSeq++;
  const registered = await registerAgent(`chaos-${seq}`, t0 + SETTLE_LIMIT_MS);
  if (shuttingDown) return;
  const child = spawnLogged(`agent-${seq}`, join(dir, `agent-${seq}.log`), ['--import', 'tsx', agentScript], {
    ...baseEnv,
    CHAOS_API_URLS: apis.map((a) => a.url).join(','),
    CHAOS_API_KEY: registered.apiKey,
    CHAOS_AMQP_URL: registered.amqpUrl,
    CHAOS_EFFECTS: join(effectsDir, `agent-${seq}.jsonl`),
    CHAOS_CONCURRENCY: String(AGENT_CONCURRENCY),
  });
  const entry: AgentProcess = { slot, agentId: registered.id, child, killedByTest: false };
  agents[slot] = entry;
  child.once('exit', (code, signal) => {
    if (shuttingDown || entry.killedByTest) return;
    stats.agentCrashes++;
    say(`agent ${seq} (pid ${child.pid}) exited on its own (code ${code}, signal ${signal}); replacing it`);
    notes.push(
      `agent ${seq} pid ${child.pid} exited on its own at ${elapsed()} (code ${code}, signal ${signal}): ${crashReason(join(dir, `agent-${seq}.log`))}`,
    );
    // A pause, so an agent that cannot start does not spin through registrations.
    if (agents[slot] === entry)
      void sleep(1000)
        .then(() => spawnAgent(slot))
        .catch((error) => say(`agent respawn failed: ${error}`));
  });
}

async function killAgent(): Promise<void> {
  const live = agents.filter((a): a is AgentProcess => a !== undefined && a.child.exitCode === null);
  if (live.length === 0) return;
  const victim = pick(live);
  const pid = victim.child.pid!;
  victim.killedByTest = true;
  killedAt.set(pid, Date.now());
  killedAgents.set(victim.agentId, Date.now());
  victim.child.kill('SIGKILL');
  stats.agentKills++;
  agents[victim.slot] = undefined;
  await spawnAgent(victim.slot);
}

// ---------------------------------------------------------------- load
const plainBatchIds: string[] = [];

/** Creates one batch and does not return until its creation is known: confirmed, or proven absent and retried. */
async function createBatch(label: string, until: number): Promise<void> {
  const batchId = randomUUID();
  plainBatchIds.push(batchId);
  const tasks = Array.from({ length: BATCH }, (_, i) => ({
    title: `chaos ${label}.${i}`,
    capability: TASK_CAPABILITY,
    payload: { chaos_batch: batchId, cost: '0.001' },
    max_retries: 10,
  }));
  for (;;) {
    try {
      const res = await apiCall('POST', '/api/tasks/batch', { tasks });
      if (res.status === 201) {
        stats.plainCreated += BATCH;
        return;
      }
      if (res.status < 500 && res.status !== 429) {
        failures.push(
          `POST /api/tasks/batch answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`,
        );
        return;
      }
    } catch {
      // Neither API answered, or the answer was cut: the outcome is unknown.
    }
    stats.createRetries++;
    // The batch is one transaction and carries a marker, so the database says whether it landed;
    // the pause lets a commit that was already on its way finish first.
    await sleep(1000);
    const rows = await queryWhenUp<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE payload->>'chaos_batch' = $1",
      [batchId],
      until,
    ).catch(() => undefined);
    const landed = rows?.[0]?.n;
    if (landed === BATCH) {
      stats.plainCreated += BATCH;
      stats.createdAfterUnknownOutcome += BATCH;
      return;
    }
    if (landed !== undefined && landed !== 0) {
      failures.push(`batch ${batchId}: ${landed} of ${BATCH} tasks exist (a batch should be all or none)`);
      return;
    }
    if (Date.now() > until || shuttingDown) {
      notes.push(`batch ${label} (${batchId}) not created before the load deadline`);
      return;
    }
  }
}

async function createPlainTasks(until: number): Promise<void> {
  for (let index = 0; index < PLAIN_TASKS / BATCH; index++) {
    if (Date.now() > until || shuttingDown) break;
    const started = Date.now();
    await createBatch(String(index), until);
    await sleep(Math.max(0, BATCH_PACE_MS - (Date.now() - started)));
  }
}

const diamond = {
  name: 'chaos-diamond',
  variables: {
    ca: { type: 'string', required: true },
    cb: { type: 'string', required: true },
    cc: { type: 'string', required: true },
    cd: { type: 'string', required: true },
  },
  steps: [
    { key: 'a', title: 'A', capability: 'wf', payload: { cost: '{{vars.ca}}' } },
    {
      key: 'b',
      title: 'B',
      capability: 'wf',
      depends_on: ['a'],
      payload: { cost: '{{vars.cb}}', after: '{{steps.a.result.step}}' },
    },
    { key: 'c', title: 'C', capability: 'wf', depends_on: ['a'], payload: { cost: '{{vars.cc}}' } },
    { key: 'd', title: 'D', capability: 'wf', depends_on: ['b', 'c'], payload: { cost: '{{vars.cd}}' } },
  ],
};
/** run id → the exact total its steps' costs add up to. */
const expectedCost = new Map<string, string>();

async function triggerRuns(workflowId: string, until: number): Promise<void> {
  for (let i = 0; i < RUNS; i++) {
    if (shuttingDown) break;
    const started = Date.now();
    // Thousandths as integers, so the expected total is exact.
    const parts = Array.from({ length: 4 }, () => 1 + Math.floor(Math.random() * 999));
    const variables = Object.fromEntries(
      ['ca', 'cb', 'cc', 'cd'].map((k, j) => [k, (parts[j]! / 1000).toFixed(3)]),
    );
    const total = (parts.reduce((a, b) => a + b, 0) / 1000).toFixed(3);
    for (;;) {
      try {
        // The same Idempotency-Key on every try: one run however many times it is sent.
        const res = await apiCall(
          'POST',
          `/api/workflows/${workflowId}/trigger`,
          { variables },
          { 'idempotency-key': `chaos-${runId}-${i}` },
        );
        if (res.status === 201 || res.status === 200) {
          expectedCost.set((res.body as { run_id: string }).run_id, total);
          stats.runsTriggered++;
          break;
        }
        if (res.status < 500 && res.status !== 429) {
          failures.push(`trigger answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
          break;
        }
      } catch {
        // Unknown outcome: the key makes the retry safe.
      }
      if (Date.now() > until || shuttingDown) {
        notes.push(`run ${i} not triggered before the load deadline`);
        break;
      }
      await sleep(500);
    }
    await sleep(Math.max(0, RUN_PACE_MS - (Date.now() - started)));
  }
}

// ---------------------------------------------------------------- faults
async function closeBrokerConnections(): Promise<void> {
  const closed = await vhost.closeConnections();
  stats.connectionCloses += closed;
  say(`closed ${closed} broker connections of vhost ${vhost.name}`);
}

async function deleteTaskQueue(): Promise<void> {
  const queue = `tasks.todo.${TASK_CAPABILITY}`;
  // Agents keep up with the load, so the queue is often empty: a batch of its own, just published,
  // makes sure messages go down with it.
  await createBatch('doomed', Date.now() + 20_000);
  await sleep(150);
  const sampled = await vhost.deleteQueue(queue);
  stats.queueDeletes++;
  say(
    `force-deleted queue ${queue} right after a batch of ${BATCH} (management API's last sample: ${sampled ?? '?'} messages)`,
  );
}

async function killOneApi(): Promise<void> {
  const api = pick(apis);
  const child = api.child!;
  api.killedByTest = true;
  killedAt.set(child.pid!, Date.now());
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  stats.apiKills++;
  await exited;
  say(`killed API ${api.index} (pid ${child.pid}); restarting it`);
  startApi(api);
  await waitHealthy(api, 60_000);
  say(`API ${api.index} back (pid ${api.child?.pid})`);
}

async function restartPostgresFast(): Promise<void> {
  const started = Date.now();
  await pgsrv!.restartFast();
  stats.pgRestarts++;
  say(`PostgreSQL restarted (-m fast) in ${Date.now() - started} ms`);
}

async function killPostmaster(): Promise<void> {
  const started = Date.now();
  await pgsrv!.killPostmaster();
  stats.pgKills++;
  await sleep(2000);
  await pgsrv!.start();
  say(`PostgreSQL postmaster killed (-9) and started again: down ${Date.now() - started} ms`);
}

/**
 * One fault at a time, each at least FAULT_GAP_MS after the previous one ended, so each is seen
 * on its own. The database faults come first, while the load is at its height; the API process
 * last, because its restart takes longest (up to half a minute on a busy two-core machine) and
 * no database fault should land while it migrates and starts.
 */
const schedule: { at: number; name: string; run: () => Promise<void> }[] = [
  { at: 8_000, name: 'close every broker connection', run: closeBrokerConnections },
  { at: 16_000, name: 'force-delete a task queue', run: deleteTaskQueue },
  { at: 24_000, name: 'PostgreSQL restart -m fast', run: restartPostgresFast },
  { at: 34_000, name: 'kill -9 the postmaster', run: killPostmaster },
  { at: 46_000, name: 'kill -9 an API process', run: killOneApi },
];
const FAULT_GAP_MS = 6_000;

async function runFaults(loadStart: number): Promise<void> {
  let previousEnd = 0;
  for (const fault of schedule) {
    await sleep(Math.max(0, loadStart + fault.at - Date.now(), previousEnd + FAULT_GAP_MS - Date.now()));
    if (shuttingDown) return;
    say(`fault: ${fault.name}`);
    try {
      faultInFlight = fault.run();
      await faultInFlight;
    } catch (error) {
      failures.push(
        `fault "${fault.name}" could not be injected: ${error instanceof Error ? error.message : error}`,
      );
    }
    previousEnd = Date.now();
  }
}

async function killAgentsRepeatedly(loadStart: number): Promise<void> {
  await sleep(3000);
  while (Date.now() < loadStart + AGENT_KILLS_UNTIL_MS && !shuttingDown) {
    await killAgent().catch((error) => {
      if (!shuttingDown) failures.push(`agent kill/replace failed: ${error}`);
    });
    await sleep(2500 + Math.random() * 2500);
  }
}

// ---------------------------------------------------------------- observing
interface Snapshot {
  statuses: Record<string, number>;
  runs: Record<string, number>;
  unsent: number;
}

async function snapshot(): Promise<Snapshot> {
  const [statuses, runs, unsent] = await Promise.all([
    query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM tasks GROUP BY status'),
    query<{ status: string; n: number }>(
      'SELECT status, count(*)::int AS n FROM workflow_runs GROUP BY status',
    ),
    query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL'),
  ]);
  return {
    statuses: Object.fromEntries(statuses.map((r) => [r.status, r.n])),
    runs: Object.fromEntries(runs.map((r) => [r.status, r.n])),
    unsent: unsent[0]?.n ?? 0,
  };
}

const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0);
const open = (s: Snapshot) =>
  (s.statuses.TODO ?? 0) + (s.statuses.IN_PROGRESS ?? 0) + (s.statuses.PENDING ?? 0);

function faultsSoFar(): string {
  return `agent_kills=${stats.agentKills} agent_exits=${stats.agentCrashes} api_kills=${stats.apiKills} api_crashes=${stats.apiCrashes} conn_closed=${stats.connectionCloses} queue_deletes=${stats.queueDeletes} pg_restarts=${stats.pgRestarts} pg_kills=${stats.pgKills}`;
}

let lastSnapshot: Snapshot | undefined;
async function progress(): Promise<void> {
  try {
    const s = await snapshot();
    lastSnapshot = s;
    say(
      `created=${sum(s.statuses)} done=${s.statuses.DONE ?? 0} todo=${s.statuses.TODO ?? 0} in_progress=${s.statuses.IN_PROGRESS ?? 0} pending=${s.statuses.PENDING ?? 0} other=${sum(s.statuses) - open(s) - (s.statuses.DONE ?? 0)} runs=${s.runs.COMPLETED ?? 0}/${sum(s.runs)} unsent=${s.unsent} | ${faultsSoFar()}`,
    );
  } catch (error) {
    say(`(database unreachable: ${error instanceof Error ? error.message : error}) | ${faultsSoFar()}`);
  }
}

// ---------------------------------------------------------------- clean-up
async function stopChildren(signal: NodeJS.Signals, waitMs: number): Promise<void> {
  const all = [...children.values()].map(({ child }) => child);
  const exits = all.map((child) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => child.once('exit', r)),
  );
  for (const child of all) {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
  await Promise.race([Promise.all(exits), sleep(waitMs)]);
}

let cleanedUp: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleanedUp ??= (async () => {
    shuttingDown = true;
    clearInterval(ticker);
    await Promise.race([faultInFlight?.catch(() => {}), sleep(30_000)]);
    await stopChildren('SIGKILL', 3000);
    await pool?.end().catch(() => {});
    if (pgsrv) {
      const pgLog = join(dirname(pgsrv.dataDir), 'postgres.log');
      if (existsSync(pgLog)) copyFileSync(pgLog, join(dir, 'postgres.log'));
      await pgsrv.stop().catch((error) => say(`could not stop PostgreSQL: ${error}`));
    }
    await vhost
      .remove(registeredAgentIds.map((id) => `agent-${id}`))
      .catch((error) => say(`${error.message}: ${error.errors}`));
  })();
  return cleanedUp;
}

function printLogs(): void {
  console.log(`\nLogs are kept in ${dir}`);
  for (const api of apis) console.log(`\n--- ${api.log}:\n${summarizeLogs([api.log], 15)}`);
  const agentLogs = readdirSync(dir)
    .filter((f) => /^agent-\d+\.log$/.test(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  console.log(
    `\n--- the ${agentLogs.length} agent logs (agent-*.log), together:\n${summarizeLogs(agentLogs, 12)}`,
  );
  console.log(`\n--- tail of ${join(dir, 'postgres.log')}\n${tail(join(dir, 'postgres.log'), 8)}`);
}

// ---------------------------------------------------------------- the run
interface Verdict {
  line: string;
  failed: boolean;
}

async function main(): Promise<Verdict> {
  say(`chaos run ${runId}; logs in ${dir}`);
  pgsrv = await startThrowawayPostgres();
  const databaseUrl = await pgsrv.createDatabase('devart_chaos');
  pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 3,
    connectionTimeoutMillis: 2000,
    query_timeout: 5000,
  });
  pool.on('error', () => {
    // An idle connection cut by the restarts: the next query opens a new one.
  });
  say(`PostgreSQL on port ${pgsrv.port}`);

  await vhost.create();
  say(`RabbitMQ vhost and user ${vhost.name}`);

  apiEnv = {
    ...baseEnv,
    DATABASE_URL: databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    RABBITMQ_MANAGEMENT_URL: managementUrl.toString(),
    JWT_SECRET: jwtSecret,
    TASK_LEASE_SECONDS: String(LEASE_SECONDS),
    REAPER_INTERVAL_SECONDS: '1',
    // Lost messages (the deleted queue) are looked for after 15 s instead of a minute, within the budget.
    RECONCILE_AFTER_SECONDS: '15',
    RECONCILE_INTERVAL_SECONDS: '2',
    RETRY_BASE_MS: '200',
    RETRY_CAP_MS: '2000',
    SANDBOX_PROVIDER: 'none',
    LOG_LEVEL: 'warn',
  };
  for (let index = 1; index <= 2; index++) {
    const port = await freePort();
    apis.push({
      index,
      port,
      url: `http://127.0.0.1:${port}`,
      log: join(dir, `api-${index}.log`),
      killedByTest: false,
    });
  }
  for (const api of apis) startApi(api);
  await Promise.all(apis.map((api) => waitHealthy(api, 90_000)));
  say(`API processes on ${apis.map((a) => a.url).join(' and ')}`);

  adminToken = await signUserToken(jwtSecret, { role: 'admin', ttlSeconds: 3600 });
  const defined = await apiCall('POST', '/api/workflows', diamond);
  if (defined.status !== 201)
    throw new Error(`defining the workflow: ${defined.status} ${JSON.stringify(defined.body)}`);
  const workflowId = (defined.body as { id: string }).id;

  await Promise.all(Array.from({ length: AGENTS }, (_, slot) => spawnAgent(slot)));
  say(`${AGENTS} agents started`);

  const loadStart = Date.now();
  ticker = setInterval(() => void progress(), 3000);
  const loadUntil = t0 + SETTLE_LIMIT_MS - 60_000;
  await Promise.all([
    createPlainTasks(loadUntil),
    triggerRuns(workflowId, loadUntil),
    runFaults(loadStart),
    killAgentsRepeatedly(loadStart),
  ]);
  say(
    `load and faults done: ${stats.plainCreated} tasks and ${stats.runsTriggered} runs confirmed; settling`,
  );

  // Quiescence: nothing open, every run ended, the outbox empty — or the deadline, or no change at
  // all for STALL_MS (a stuck platform does not get better by waiting out the whole budget).
  let settled = false;
  let stalled = false;
  let lastState = '';
  let lastChange = Date.now();
  while (Date.now() < t0 + SETTLE_LIMIT_MS) {
    try {
      const s = await snapshot();
      const runsOpen = sum(s.runs) - (s.runs.COMPLETED ?? 0) - (s.runs.FAILED ?? 0) - (s.runs.CANCELLED ?? 0);
      if (open(s) === 0 && s.unsent === 0 && runsOpen === 0) {
        settled = true;
        break;
      }
      const state = JSON.stringify(s);
      if (state !== lastState) {
        lastState = state;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > STALL_MS) {
        stalled = true;
        break;
      }
    } catch {
      // The database is back soon, or the deadline says otherwise.
    }
    await sleep(1000);
  }
  clearInterval(ticker);
  await progress();
  if (settled) say('settled');
  else if (stalled)
    failures.push(`the platform stopped making progress: nothing changed for ${STALL_MS / 1000} s`);
  else failures.push(`the platform did not settle within ${SETTLE_LIMIT_MS / 1000} s of the start`);

  // Agents first (gracefully: a settled platform leaves them nothing to report), then the APIs.
  shuttingDown = true;
  const agentChildren = [...children.values()].filter((c) => c.name.startsWith('agent-')).map((c) => c.child);
  for (const child of agentChildren) child.kill('SIGTERM');
  await Promise.race([
    Promise.all(
      agentChildren.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    ),
    sleep(6000),
  ]);
  await stopChildren('SIGTERM', 5000);
  await stopChildren('SIGKILL', 2000);

  // ------------------------------------------------------------ judging
  // The database may still be coming back from the last fault: wait for it, briefly.
  await queryWhenUp('SELECT 1', undefined, Date.now() + 15_000);
  const verdict = await judgeRun(query, {
    effectsDir,
    killedAt,
    killedAgents,
    expectedCost,
    plainConfirmed: stats.plainCreated,
    plainWanted: PLAIN_TASKS,
    batchSize: BATCH,
    runsWanted: 20,
    apiCrashes: stats.apiCrashes,
  });
  console.log('');
  for (const line of verdict.report) console.log(line);
  console.log(
    `Creation: ${stats.createdAfterUnknownOutcome} tasks found in the database after an unknown outcome; ${stats.createRetries} retries. Triggers confirmed: ${stats.runsTriggered}.`,
  );
  console.log(`Faults: ${faultsSoFar()}`);
  const logged = (pattern: RegExp) =>
    countLines(
      apis.map((a) => a.log),
      pattern,
    );
  console.log(
    `API logs: ${logged(/task message lost/)} lost messages republished by the reconciler, ${logged(/"lease expired"/)} leases expired, ${logged(/database unreachable/)} database outages seen, ${logged(/connection lost/)} broker connections lost`,
  );
  for (const note of notes) console.log(`note: ${note}`);
  failures.push(...verdict.failures);
  return { line: verdict.line, failed: failures.length > 0 };
}

// ---------------------------------------------------------------- entry
let finishing = false;
const finish = async (verdict: Verdict): Promise<void> => {
  if (finishing) return;
  finishing = true;
  await cleanUp();
  if (verdict.failed) {
    console.log('\nFAILED:');
    for (const failure of failures) console.log(`  - ${failure}`);
    printLogs();
  } else {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(verdict.line);
  process.exit(verdict.failed ? 1 : 0);
};

/** When the run is cut short: the last counts seen, and the effect logs judged without the database. */
function partialVerdict(): Verdict {
  const statuses = lastSnapshot?.statuses ?? {};
  const created = sum(statuses);
  const done = statuses.DONE ?? 0;
  let judged = { duplicateAfterDone: 0, rerunAfterFinished: 0 };
  try {
    judged = judgeEffects(readEffects(effectsDir), killedAt, new Map());
  } catch {
    // No logs yet.
  }
  failures.push('the counts below are partial: the last ones seen before the run was cut short');
  return {
    line: `created=${created} done=${done} lost=${created - done} duplicate_after_done=${judged.duplicateAfterDone} rerun_after_finished=${judged.rerunAfterFinished} api_crashes=${stats.apiCrashes} recovered_by_lease=0`,
    failed: true,
  };
}

// `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and a
// second signal left to its default would end it before the clean-up.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (finishing) return;
    say(`${signal}: cleaning up`);
    failures.push(`interrupted by ${signal}`);
    void finish(partialVerdict());
  });
}
// Last resort if something ends this process without the clean-up: no child outlives it.
process.on('exit', () => {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});
setTimeout(() => {
  failures.push(`the global deadline (${HARD_LIMIT_MS / 1000} s) passed`);
  void finish(partialVerdict());
}, HARD_LIMIT_MS).unref();

main().then(finish, (error: unknown) => {
  failures.push(`the harness failed: ${error instanceof Error ? (error.stack ?? error.message) : error}`);
  return finish(partialVerdict());
});
