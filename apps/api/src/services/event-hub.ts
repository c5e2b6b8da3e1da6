import { type Db, EVENTS_CHANNEL, type PlatformEvent } from '@devart/db';
import type { Logger } from 'pino';

export type EventListener = (event: PlatformEvent) => void;

export interface EventHub {
  subscribe(listener: EventListener): () => void;
  stop(): Promise<void>;
}

/**
 * One LISTEN per API process, fanned out to every subscriber (SSE clients, notifiers). Events
 * come from NOTIFY in the transactions that changed the tasks, so every replica hears all of them.
 */
export function createEventHub({ db, logger }: { db: Db; logger: Logger }): EventHub {
  const listeners = new Set<EventListener>();
  let unlisten: Promise<() => Promise<void>> | undefined;
  const deliver = (payload: string) => {
    if (!payload) return;
    let event: PlatformEvent;
    try {
      event = JSON.parse(payload) as PlatformEvent;
    } catch {
      logger.warn({ payload }, 'ignoring an event that is not JSON');
      return;
    }
    for (const listener of listeners) listener(event);
  };
  return {
    subscribe(listener) {
      // Listening starts with the first subscriber, so a process nobody watches holds no extra connection.
      // listen() rides out outages itself; it rejects only for faults retrying cannot fix, and then
      // the next subscriber tries again instead of the rejection going unhandled.
      unlisten ??= db.listen(EVENTS_CHANNEL, deliver).catch((error: unknown) => {
        logger.warn({ err: error }, 'event stream: LISTEN failed; events are not delivered');
        unlisten = undefined;
        return async () => {};
      });
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async stop() {
      listeners.clear();
      if (unlisten) await (await unlisten)();
    },
  };
}
