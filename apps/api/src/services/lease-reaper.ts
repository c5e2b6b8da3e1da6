import { type Db, ping, reconcileAgentStatus } from '@devart/db';
import type { Logger } from 'pino';
import { markAgentsOffline } from './agents';
import { failureStreak } from './failure-streak';
import { type FailureSettings, reapExpiredLeases } from './failures';

export interface LeaseReaper {
  /**
   * Reaps once now (tests), then corrects agents' BUSY/IDLE and marks silent agents OFFLINE;
   * returns the ids of the tasks it failed.
   */
  reapNow(): Promise<string[]>;
  stop(): void;
}

/**
 * How long agents get to heartbeat again after the platform could not hear them (this process
 * starting, or the database coming back): one heartbeat period (a third of the lease) plus the
 * SDK's longest retry wait, never more than the lease itself.
 * @example heartbeatGraceMs(60) // 25 000
 */
export function heartbeatGraceMs(leaseSeconds: number): number {
  return Math.min(leaseSeconds * 1000, Math.round((leaseSeconds * 1000) / 3) + 5000);
}

/**
 * Runs the lease reaper (and the agent status checks) on a timer in every API process. With
 * `graceMs`, the timer reaps nothing until this process has been running that long, nor for that
 * long after the database comes back (from a restart, or unreachable from here): a lease that
 * lapsed while no heartbeat could get through says nothing about its agent.
 */
export function startLeaseReaper({
  db,
  logger,
  intervalMs,
  failures,
  graceMs = 0,
  agentOfflineSeconds = 120,
}: {
  db: Db;
  logger: Logger;
  intervalMs: number;
  failures: FailureSettings;
  graceMs?: number;
  /** A live agent holding no task and silent this long is marked OFFLINE (AGENT_OFFLINE_SECONDS). */
  agentOfflineSeconds?: number;
}): LeaseReaper {
  let running = false;
  let holdUntil = Date.now() + graceMs;
  const streak = failureStreak(logger, 'lease reaper');
  const reap = async (graceSeconds: number) => {
    const reaped = await reapExpiredLeases(db, failures, { graceSeconds });
    for (const task of reaped) {
      logger.warn(
        { task_id: task.id, attempt: task.attempt, status: task.status, retry_count: task.retry_count },
        'lease expired',
      );
    }
    // Concurrent completes of one agent can leave its status stale; set it right on every tick.
    const corrected = await reconcileAgentStatus(db);
    if (corrected > 0) logger.debug({ corrected }, 'agent status corrected');
    // After the reap, so an agent whose lease just lapsed is judged by its silence, not its task.
    for (const agent of await markAgentsOffline(db, agentOfflineSeconds)) {
      logger.info({ agent_id: agent.id, name: agent.name }, 'agent offline');
    }
    return reaped.map((t) => t.id);
  };
  // While holding back, a tick only checks that the database answers: every failure moves the end
  // of the grace, so it is counted from when the database answers again.
  const tick = () => (Date.now() < holdUntil ? ping(db) : reap(graceMs / 1000));
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    // A database outage fails every tick until it ends: one line when it starts, one when it ends.
    tick()
      .then(streak.succeeded, (error) => {
        streak.failed(error);
        holdUntil = Date.now() + graceMs;
      })
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { reapNow: () => reap(0), stop: () => clearInterval(timer) };
}
