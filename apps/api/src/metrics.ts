import {
  countAgentsByStatus,
  countTasksByStatus,
  type Db,
  outboxBacklog,
  sandboxCounts,
  type TaskRow,
} from '@devart/db';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface FinishedRun {
  duration_seconds: number;
  total_cost: string | null;
}

/**
 * Prometheus metrics of one API process. Counts that the database knows exactly (tasks by status,
 * agents by status, the outbox backlog) are read at scrape time; durations and latencies are
 * observed as the state changes happen in this process.
 */
export function createMetrics(db: Db) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'devart_' });

  const tasks = new Gauge({
    name: 'devart_tasks',
    help: 'Tasks by status and capability (from the database at scrape time).',
    labelNames: ['status', 'capability'] as const,
    registers: [registry],
    async collect() {
      const rows = await countTasksByStatus(db);
      this.reset();
      for (const r of rows) this.set({ status: r.status, capability: r.capability ?? '' }, r.n);
    },
  });
  const agents = new Gauge({
    name: 'devart_agents',
    help: 'Agents that are not revoked, by status (from the database at scrape time).',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await countAgentsByStatus(db);
      this.reset();
      for (const r of rows) this.set({ status: r.status }, r.n);
    },
  });
  new Gauge({
    name: 'devart_sandboxes',
    help: 'Sandboxes by provider and status (from the database at scrape time).',
    labelNames: ['provider', 'status'] as const,
    registers: [registry],
    async collect() {
      const rows = await sandboxCounts(db);
      this.reset();
      for (const r of rows) this.set({ provider: r.provider, status: r.status }, r.n);
    },
  });
  const outboxPending = new Gauge({
    name: 'devart_outbox_pending',
    help: 'Outbox rows not yet published to the broker.',
    registers: [registry],
  });
  const outboxAge = new Gauge({
    name: 'devart_outbox_oldest_age_seconds',
    help: 'Age of the oldest due outbox row not yet published (0 when none).',
    registers: [registry],
    async collect() {
      const backlog = await outboxBacklog(db);
      outboxPending.set(backlog.pending);
      this.set(backlog.oldest_age_seconds);
    },
  });
  const taskDuration = new Histogram({
    name: 'devart_task_duration_seconds',
    help: 'From start to completion of tasks completed through this process.',
    labelNames: ['capability'] as const,
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600],
    registers: [registry],
  });
  const enqueueToStart = new Histogram({
    name: 'devart_task_enqueue_to_start_seconds',
    help: 'From creation to start of first attempts started through this process.',
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [registry],
  });
  const runDuration = new Histogram({
    name: 'devart_workflow_run_duration_seconds',
    help: 'Duration of workflow runs completed through this process.',
    buckets: [0.1, 1, 5, 30, 60, 300, 900, 3600, 14_400],
    registers: [registry],
  });
  const runCost = new Counter({
    name: 'devart_workflow_run_cost_total',
    help: 'Sum of the total cost of workflow runs completed through this process.',
    registers: [registry],
  });
  const republished = new Counter({
    name: 'devart_tasks_republished_total',
    help: 'TODO tasks whose message was lost, republished by the reconciler of this process.',
    registers: [registry],
  });
  const deadLettersUnexpected = new Counter({
    name: 'devart_dead_letters_unexpected_total',
    help: 'Dead letters the watcher of this process did not expect (a valid task message an agent rejected, or a death reason devart never configures), by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  void tasks;
  void agents;
  void outboxAge;

  const seconds = (from: Date | null, to: Date | null) =>
    from && to ? Math.max(0, (to.getTime() - from.getTime()) / 1000) : undefined;

  return {
    registry,
    tasksStarted(rows: TaskRow[]) {
      for (const t of rows) {
        const latency = t.attempt === 1 ? seconds(t.created_at, t.started_at) : undefined;
        if (latency !== undefined) enqueueToStart.observe(latency);
      }
    },
    tasksCompleted(rows: TaskRow[]) {
      for (const t of rows) {
        const duration = seconds(t.started_at, t.completed_at);
        if (duration !== undefined) taskDuration.observe({ capability: t.capability ?? '' }, duration);
      }
    },
    tasksRepublished(count: number) {
      republished.inc(count);
    },
    deadLetterUnexpected(reason: string) {
      deadLettersUnexpected.inc({ reason });
    },
    runsCompleted(runs: FinishedRun[]) {
      for (const r of runs) {
        runDuration.observe(r.duration_seconds);
        if (r.total_cost !== null) runCost.inc(Number(r.total_cost));
      }
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
