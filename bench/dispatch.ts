// Dispatch benchmark: N no-op tasks through the whole platform (HTTP API → outbox → relay →
// broker → SDK agents → start/complete over HTTP), on the database and broker the environment
// names, with BullMQ on the machine's Redis measured in the same run as the peer.
//
//   npm run bench                                   # PGlite + in-process broker
//   DATABASE_URL=postgres://… AMQP_URL=amqp://… npm run bench
//   BENCH_TASKS=5000 BENCH_AGENTS=4 BENCH_CONCURRENCY=16 npm run bench
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { signUserToken } from '@devart/api';
import { connectPostgres, type Db, migrate, openPglite } from '@devart/db';
import { type Broker, createInProcessBroker, createRabbitBroker } from '@devart/queue';
import { createAgent } from '@devart/sdk';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { createApp } from '../apps/api/src/app';
import { createTokenVerifier } from '../apps/api/src/auth/jwt';
import { startOutboxRelay } from '../apps/api/src/services/outbox-relay';

const tasks = Number(process.env.BENCH_TASKS ?? 5000);
const agentCount = Number(process.env.BENCH_AGENTS ?? 4);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
const secret = randomBytes(32).toString('hex');
const logger = pino({ level: 'warn' });

async function openBenchDb(): Promise<{ db: Db; label: string; drop(): Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = await openPglite();
    return { db, label: 'PGlite', drop: () => db.close() };
  }
  const name = `devart_bench_${randomBytes(4).toString('hex')}`;
  const admin = connectPostgres(url, { max: 1 });
  await admin.query(`CREATE DATABASE ${name}`);
  const target = new URL(url);
  target.pathname = `/${name}`;
  const db = connectPostgres(target.toString(), { max: 20 });
  return {
    db,
    label: 'PostgreSQL',
    async drop() {
      await db.close();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

async function benchDevart() {
  const { db, label, drop } = await openBenchDb();
  await migrate(db);
  const prefix = `bench${randomBytes(3).toString('hex')}.`;
  const broker: Broker = process.env.AMQP_URL
    ? createRabbitBroker({ url: process.env.AMQP_URL, prefix, logger })
    : createInProcessBroker();
  await broker.setup();
  const app = createApp({ db, verifyToken: createTokenVerifier({ secret }), logger, recordUsers: true });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const relay = await startOutboxRelay({ db, broker, logger });
  const admin = await signUserToken(secret, { role: 'admin', ttlSeconds: 3600 });
  const json = { 'content-type': 'application/json', authorization: `Bearer ${admin}` };

  const agents = [];
  const agentBrokers: Broker[] = [];
  for (let i = 0; i < agentCount; i++) {
    const res = await fetch(`${base}/api/agents`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ name: `bench-${i}`, capabilities: ['noop'] }),
    });
    const { api_key } = (await res.json()) as { api_key: string };
    const agent = createAgent({
      apiUrl: base,
      apiKey: api_key,
      // Each agent gets a connection of its own on RabbitMQ, as separate agent processes would.
      broker: process.env.AMQP_URL ? agentBroker() : broker,
      capabilities: ['noop'],
      concurrency,
    });
    await agent.startConsuming(() => ({ result: null }));
    agents.push(agent);
  }

  function agentBroker(): Broker {
    const b = createRabbitBroker({ url: process.env.AMQP_URL!, prefix, logger });
    agentBrokers.push(b);
    return b;
  }
  const started = performance.now();
  for (let offset = 0; offset < tasks; offset += 1000) {
    const n = Math.min(1000, tasks - offset);
    const res = await fetch(`${base}/api/tasks/batch`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({
        tasks: Array.from({ length: n }, (_, i) => ({ title: `t${offset + i}`, capability: 'noop' })),
      }),
    });
    if (res.status !== 201) throw new Error(`batch: ${res.status} ${await res.text()}`);
  }
  for (;;) {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE status = 'DONE'",
    );
    if (rows[0]!.n >= tasks) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  const { rows } = await db.query<{ p50: number; p99: number }>(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
     FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS ms FROM tasks) s`,
  );
  await Promise.all(agents.map((a) => a.stop()));
  if (process.env.AMQP_URL) await Promise.all(agentBrokers.map((b) => b.close()));
  await relay.stop();
  await new Promise<void>((r) => {
    server.close(() => r());
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
  await broker.close();
  await drop();
  return {
    label: `devart (${label} + ${process.env.AMQP_URL ? 'RabbitMQ' : 'in-process broker'})`,
    perSecond: tasks / seconds,
    p50: rows[0]!.p50,
    p99: rows[0]!.p99,
  };
}

async function benchBullmq() {
  let bullmq: typeof import('bullmq');
  try {
    bullmq = await import('bullmq');
  } catch {
    return undefined;
  }
  const connection = { host: '127.0.0.1', port: 6379 };
  const name = `bench-${randomBytes(3).toString('hex')}`;
  const queue = new bullmq.Queue(name, { connection });
  const latencies: number[] = [];
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  const workers = Array.from(
    { length: agentCount },
    () =>
      new bullmq.Worker(
        name,
        async (job) => {
          latencies.push(Date.now() - job.timestamp);
        },
        { connection, concurrency },
      ),
  );
  for (const w of workers) {
    w.on('completed', () => {
      if (++done === tasks) finish();
    });
  }
  const started = performance.now();
  for (let offset = 0; offset < tasks; offset += 1000) {
    const n = Math.min(1000, tasks - offset);
    await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 't', data: { i: offset + i } })));
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => w.close()));
  await queue.obliterate({ force: true });
  await queue.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { label: 'BullMQ (Redis, same machine)', perSecond: tasks / seconds, p50: at(0.5), p99: at(0.99) };
}

const devart = await benchDevart();
const bull = await benchBullmq();
console.log(`\n${tasks} no-op tasks, ${agentCount} agents × concurrency ${concurrency}, end to end:\n`);
console.log('| system | tasks/s | enqueue→start p50 | p99 | vs BullMQ |');
console.log('|---|---:|---:|---:|---:|');
for (const r of [devart, bull]) {
  if (!r) continue;
  const ratio = bull ? (r.perSecond / bull.perSecond).toFixed(2) : 'n/a';
  console.log(
    `| ${r.label} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(0)} ms | ${r.p99.toFixed(0)} ms | ${ratio}× |`,
  );
}
if (!bull) console.log('\n(BullMQ not installed: npm i -D bullmq to measure the peer in the same run.)');
process.exit(0);
