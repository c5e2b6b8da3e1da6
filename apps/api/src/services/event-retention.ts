import { type Db, deleteEventsOlderThan } from '@devart/db';
import type { Logger } from 'pino';
import { failureStreak } from './failure-streak';

export interface EventRetention {
  /** Deletes now what is past retention (tests); returns how many events. */
  cleanNow(): Promise<number>;
  stop(): void;
}

// Not measured: small enough that one DELETE holds its locks briefly, and a run stops after
// `maxBatches` so a backlog (a lowered EVENTS_RETENTION_DAYS) is worked off over several runs.
const BATCH_SIZE = 5000;
const MAX_BATCHES = 20;

/**
 * Deletes events older than `days` days, in bounded batches, on a timer in every API process
 * (replicas skip each other's rows).
 * @example const retention = startEventRetention({ db, logger, days: 14, intervalMs: 300_000 });
 */
export function startEventRetention({
  db,
  logger,
  days,
  intervalMs,
}: {
  db: Db;
  logger: Logger;
  days: number;
  intervalMs: number;
}): EventRetention {
  let running = false;
  const streak = failureStreak(logger, 'event retention');
  const clean = async () => {
    let deleted = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch++) {
      const n = await deleteEventsOlderThan(db, { days, batchSize: BATCH_SIZE });
      deleted += n;
      if (n < BATCH_SIZE) break;
    }
    if (deleted > 0) logger.info({ deleted, days }, 'old events deleted');
    return deleted;
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    clean()
      .then(streak.succeeded, streak.failed)
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { cleanNow: clean, stop: () => clearInterval(timer) };
}
