import { platformEventTypes } from '@devart/contracts';
import { z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type { EventHub } from '../services/event-hub';
import { createRouter, protectedRoute } from './route-kit';

// One list for the events sent (packages/db notifyEvents) and the ones this stream filters by.
const eventTypes = platformEventTypes;

const EventsQuery = z.strictObject({
  types: z
    .string()
    .regex(
      new RegExp(
        `^(${eventTypes.join('|').replaceAll('.', '\\.')})(,(${eventTypes.join('|').replaceAll('.', '\\.')}))*$`,
      ),
      {
        error: `must be a comma-separated list of ${eventTypes.join(', ')}`,
      },
    )
    .optional(),
});

/** Server-sent events for the UI and notifiers: task.failed, task.quarantined, task.requeued. */
export function eventRoutes({ hub, keepAliveMs = 15_000 }: { hub: EventHub; keepAliveMs?: number }) {
  const router = createRouter();
  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/events',
      tags: ['events'],
      summary: 'Live platform events as server-sent events (event: <type>, data: JSON)',
      description:
        'Each event is `event: task.failed|task.quarantined|task.requeued` with `data` = `{ type, task_id, status, attempt, retry_count, error, next_attempt_at, at }`. ' +
        'A comment line is sent every 15 s to keep proxies from closing the stream.',
      action: 'events.subscribe',
      request: { query: EventsQuery },
      responses: {
        200: {
          description: 'An endless event stream',
          content: { 'text/event-stream': { schema: z.string() } },
        },
      },
    }),
    (c) => {
      const wanted = new Set(c.req.valid('query').types?.split(',') ?? eventTypes);
      return streamSSE(c, async (stream) => {
        let wake: (() => void) | undefined;
        const pending: string[] = [];
        const unsubscribe = hub.subscribe((event) => {
          if (!wanted.has(event.type)) return;
          pending.push(JSON.stringify(event));
          wake?.();
        });
        stream.onAbort(() => {
          unsubscribe();
          wake?.();
        });
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ types: [...wanted] }) });
        while (!stream.aborted) {
          const next = pending.shift();
          if (next) {
            const { type } = JSON.parse(next) as { type: string };
            await stream.writeSSE({ event: type, data: next });
            continue;
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, keepAliveMs);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
          if (!stream.aborted && pending.length === 0) await stream.write(': keep-alive\n\n');
        }
        unsubscribe();
      });
    },
  );
  return router;
}
