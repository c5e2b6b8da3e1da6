import type { FailureStreak } from './failure-streak';

export interface NotifiedLoop {
  /** Ends the loop once the running step, if any, has finished, then stops listening. */
  stop(): Promise<void>;
}

/**
 * Runs `step` until stopped: at once again when notified while it ran, otherwise after
 * `pollIntervalMs` or at the next notification. `listen` subscribes to the notifications (a
 * LISTEN) before the first step, so no row committed meanwhile waits for the timer. While the step fails (`streak` logs one line
 * an outage), notifications do not cut the wait short — each new row would retry a broken
 * dependency at once — and the wait doubles up to 2 s, so work resumes within 2 s of a recovery.
 * The outbox relay and the delivery loop share it.
 *
 * @example
 * const loop = await startNotifiedLoop({
 *   pollIntervalMs: 1000,
 *   streak,
 *   step: drainOnce,
 *   listen: (notify) => db.listen('devart_outbox', notify),
 * });
 */
export async function startNotifiedLoop(options: {
  pollIntervalMs: number;
  streak: FailureStreak;
  step: () => Promise<void>;
  listen: (notify: () => void) => Promise<() => Promise<void>>;
}): Promise<NotifiedLoop> {
  const { pollIntervalMs, streak, step } = options;
  let stopped = false;
  let wake: (() => void) | undefined;
  let pendingWake = false;
  let failures = 0;

  const run = async () => {
    while (!stopped) {
      try {
        await step();
        streak.succeeded();
      } catch (error) {
        streak.failed(error);
      }
      if (stopped) break;
      if (pendingWake && !streak.failing) {
        pendingWake = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const delay = streak.failing ? Math.min(pollIntervalMs * 2 ** failures++, 2000) : pollIntervalMs;
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (!streak.failing) failures = 0;
    }
  };
  const unlisten = await options.listen(() => {
    if (wake && !streak.failing) wake();
    else pendingWake = true;
  });
  const running = run();

  return {
    async stop() {
      stopped = true;
      wake?.();
      await running;
      await unlisten();
    },
  };
}
