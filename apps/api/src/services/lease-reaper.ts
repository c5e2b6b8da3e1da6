import { type Db, reconcileAgentStatus } from '@devart/db';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';
import { type FailureSettings, reapExpiredLeases } from './failures';

export interface LeaseReaper {
  /** Reaps once now (tests), then corrects agents' BUSY/IDLE; returns the ids of the tasks it failed. */
  reapNow(): Promise<string[]>;
  stop(): void;
}

/** Runs the lease reaper (and the agent status check) on a timer in every API process. */
export function startLeaseReaper({
  db,
  logger,
  intervalMs,
  failures,
}: {
  db: Db;
  logger: Logger;
  intervalMs: number;
  failures: FailureSettings;
}): LeaseReaper {
  let running = false;
  const streak = failureStreak(logger, 'lease reaper');
  const reapNow = async () => {
    const reaped = await reapExpiredLeases(db, failures);
    for (const task of reaped) {
      logger.warn(
        { task_id: task.id, attempt: task.attempt, status: task.status, retry_count: task.retry_count },
        'lease expired',
      );
    }
    // Concurrent completes of one agent can leave its status stale; set it right on every tick.
    const corrected = await reconcileAgentStatus(db);
    if (corrected > 0) logger.debug({ corrected }, 'agent status corrected');
    return reaped.map((t) => t.id);
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    // A database outage fails every tick until it ends: one line when it starts, one when it ends.
    reapNow()
      .then(streak.succeeded, streak.failed)
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { reapNow, stop: () => clearInterval(timer) };
}
