import { DatabaseUnavailableError } from '@devart/db';
import type { Logger } from 'pino';

export interface FailureStreak {
  /** Records a failed run; logs only the first of a streak. */
  failed(error: unknown): void;
  /** Records a run that worked; logs once if it ends a streak. */
  succeeded(): void;
  readonly failing: boolean;
}

/**
 * Logs a background loop's failures once per streak rather than once per tick: the first failure
 * and the first success after it. A database outage is logged at info only, because the database
 * connection already warns once for the whole process; any other fault is a warning with its error.
 * @example
 * const streak = failureStreak(logger, 'lease reaper');
 * setInterval(() => reap().then(streak.succeeded, streak.failed), 5000);
 */
export function failureStreak(logger: Logger, loop: string): FailureStreak {
  let failing = false;
  return {
    failed(error) {
      if (failing) return;
      failing = true;
      if (error instanceof DatabaseUnavailableError)
        logger.info({ loop }, `${loop}: waiting for the database`);
      else logger.warn({ err: error, loop }, `${loop} failed; retrying`);
    },
    succeeded() {
      if (!failing) return;
      failing = false;
      logger.info({ loop }, `${loop}: running again`);
    },
    get failing() {
      return failing;
    },
  };
}
