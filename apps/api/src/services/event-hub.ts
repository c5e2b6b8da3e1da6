import { type Db, EVENTS_CHANNEL, latestEventId, listEventsAfter, type PlatformEvent } from '@devart/db';
import type { Logger } from 'pino';

/** Called with every page of new events, in id order; never with an empty page. */
export type EventListener = (events: readonly PlatformEvent[]) => void;

export interface EventSubscription {
  /**
   * Resolves once the hub knows where it starts (the latest id when it began listening): every
   * event committed after that reaches the listener. A reader that replays from the table
   * after this resolves, up to the end of the table, therefore misses nothing in between.
   */
  ready: Promise<void>;
  unsubscribe(): void;
}

export interface EventHub {
  /** `onStop` is called when the hub stops (the process shuts down), so streams can end. */
  subscribe(listener: EventListener, onStop?: () => void): EventSubscription;
  stop(): Promise<void>;
}

/** Rows read per query; a burst bigger than this is read in several pages. */
const PAGE = 1000;
/** After a failed read, try again this soon (events wait in the table meanwhile). */
const RETRY_MS = 1000;

/**
 * One LISTEN per API process, fanned out to every subscriber (SSE streams). A notification only
 * says "there is more" (`{"to": <id>}`, or '' after LISTEN reconnected); the hub then reads the
 * rows above the last id it saw from the `events` table, so every replica streams every change,
 * and a notification lost during an outage is made up by the read after it.
 * @example
 * const { ready, unsubscribe } = hub.subscribe((events) => send(events));
 * await ready; // then replay from the table, skipping ids the live side already sent
 */
export function createEventHub({ db, logger }: { db: Db; logger: Logger }): EventHub {
  const listeners = new Map<EventListener, (() => void) | undefined>();
  let listening: Promise<() => Promise<void>> | undefined;
  // Where the hub stands; undefined while nobody listens, so a process nobody watches reads nothing.
  let lastSeen: number | undefined;
  let baseline: Promise<void> | undefined;
  let pumping = false;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;

  const pump = async () => {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    try {
      do {
        again = false;
        if (listeners.size === 0 || !baseline) break;
        await baseline;
        for (;;) {
          if (lastSeen === undefined || listeners.size === 0) break;
          const events = await listEventsAfter(db, { after: lastSeen, limit: PAGE });
          if (events.length === 0) break;
          lastSeen = Math.max(lastSeen ?? 0, Number(events.at(-1)!.id));
          for (const listener of listeners.keys()) listener(events);
          if (events.length < PAGE) break;
        }
      } while (again);
    } catch (error) {
      logger.warn({ err: error }, 'event stream: reading new events failed; trying again');
      retry ??= setTimeout(() => {
        retry = undefined;
        void pump();
      }, RETRY_MS);
    } finally {
      pumping = false;
    }
  };

  const onNotify = (payload: string) => {
    if (payload && lastSeen !== undefined) {
      try {
        const { to } = JSON.parse(payload) as { to?: number | string };
        // Another process's read already covered it (or it is about rows this one has seen).
        if (to !== undefined && Number(to) <= lastSeen) return;
      } catch {
        // Not ours to interpret: read anyway.
      }
    }
    void pump();
  };

  const startListening = () => {
    // listen() rides out outages itself (and calls onNotify('') when back); it rejects only for
    // faults retrying cannot fix, and then the next subscriber tries again.
    listening ??= db.listen(EVENTS_CHANNEL, onNotify).catch((error: unknown) => {
      logger.warn({ err: error }, 'event stream: LISTEN failed; events are not delivered live');
      listening = undefined;
      return async () => {};
    });
    return listening;
  };

  return {
    subscribe(listener, onStop) {
      listeners.set(listener, onStop);
      // LISTEN before reading the start, so nothing committed in between goes unannounced.
      baseline ??= startListening()
        .then(() => latestEventId(db))
        .then((id) => {
          lastSeen = Math.max(lastSeen ?? 0, id);
        });
      const ready = baseline.catch((error: unknown) => {
        baseline = undefined;
        throw error;
      });
      return {
        ready,
        unsubscribe() {
          listeners.delete(listener);
          if (listeners.size === 0) {
            // Nobody watches: forget the position; the next subscriber starts from the latest id.
            lastSeen = undefined;
            baseline = undefined;
          }
        },
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(retry);
      const stops = [...listeners.values()];
      listeners.clear();
      for (const onStop of stops) onStop?.();
      if (listening) await (await listening)();
    },
  };
}
