import { PlatformEvent, type PlatformEventType, platformEventTypes, queryInt, Uuid } from '@devart/contracts';
import { type Db, type EventFilter, listEventsAfter } from '@devart/db';
import { z } from '@hono/zod-openapi';
import { currentPrincipal, type Principal } from '../middleware/auth';
import { ProblemError } from '../problem';
import type { EventHub } from '../services/event-hub';
import { createRouter, protectedRoute } from './route-kit';

/** Limits of GET /api/events; tests shorten them. */
export interface EventStreamSettings {
  /** A comment line this often on an idle stream, so proxies keep it open (default 15 s). */
  keepAliveMs: number;
  /** Open streams one principal (a user, an agent key) may hold at once (default 5). */
  maxStreamsPerPrincipal: number;
  /**
   * Events held for a client that does not read: when more would be unread, the stream ends with
   * `event: dropped` saying why, and the client resumes with Last-Event-ID (default 10,000).
   */
  maxBuffered: number;
  /** Rows read per query while replaying (default 500). */
  replayPage: number;
}

export const defaultEventStreamSettings: EventStreamSettings = {
  keepAliveMs: 15_000,
  maxStreamsPerPrincipal: 5,
  maxBuffered: 10_000,
  replayPage: 500,
};

const typeList = new RegExp(
  `^(${platformEventTypes.join('|').replaceAll('.', '\\.')})(,(?:${platformEventTypes.join('|').replaceAll('.', '\\.')}))*$`,
);
const EventId = z.string().regex(/^[0-9]{1,18}$/, { error: 'must be an event id (digits only)' });

const filterFields = {
  types: z
    .string()
    .regex(typeList, { error: `must be a comma-separated list of ${platformEventTypes.join(', ')}` })
    .optional()
    .meta({ description: 'Only these event types (comma-separated); all by default.' }),
  task_id: Uuid.optional().meta({ description: 'Only events about this task.' }),
  workflow_run_id: Uuid.optional().meta({ description: 'Only events about this workflow run.' }),
  agent_id: Uuid.optional().meta({
    description:
      'Only events about this agent. An agent key always sees only its own; naming another agent is 403.',
  }),
  after: EventId.optional().meta({
    description:
      'Only events with a larger id (the last id the client saw). On the stream the Last-Event-ID header wins.',
  }),
};

const EventsQuery = z.strictObject(filterFields);
const EventHistoryQuery = z.strictObject({
  ...filterFields,
  limit: queryInt({ min: 1, max: 500 }).default(100),
});
const EventPage = z
  .object({
    items: z.array(PlatformEvent),
    next_after: z
      .string()
      .nullable()
      .meta({ description: 'Pass as `after` for the next page; null when this page reached the end.' }),
  })
  .meta({ id: 'EventPage' });

type FilterQuery = z.infer<typeof EventsQuery>;

/** The filter a principal may read with: an agent's is pinned to its own agent_id. */
function scopedFilter(principal: Principal, query: FilterQuery): EventFilter {
  const filter: EventFilter = {
    types: query.types?.split(',') as PlatformEventType[] | undefined,
    task_id: query.task_id,
    workflow_run_id: query.workflow_run_id,
    agent_id: query.agent_id,
  };
  if (principal.kind === 'agent') {
    if (query.agent_id !== undefined && query.agent_id !== principal.agent.id) {
      throw new ProblemError(
        'forbidden',
        'An agent key sees only its own events: agent_id must be its own id or left out.',
      );
    }
    filter.agent_id = principal.agent.id;
  }
  return filter;
}

function matches(filter: EventFilter, event: PlatformEvent): boolean {
  return (
    (!filter.types || filter.types.includes(event.type)) &&
    (!filter.task_id || event.task_id === filter.task_id) &&
    (!filter.workflow_run_id || event.workflow_run_id === filter.workflow_run_id) &&
    (!filter.agent_id || event.agent_id === filter.agent_id)
  );
}

function principalKey(principal: Principal): string {
  return principal.kind === 'agent' ? `agent:${principal.agent.id}` : `user:${principal.user.sub}`;
}

const frame = (event: PlatformEvent) =>
  `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;

/**
 * One SSE connection as a pull-based stream: nothing is produced before the client asks for it,
 * so the events held for it are exactly the unread ones, and those are capped.
 *
 * Replay → live without a gap or a duplicate: it subscribes to the hub first (live events are
 * buffered from then on), waits until the hub knows its start, replays from the table in pages
 * until a page comes back short (the table's end at that moment, which is at or past the hub's
 * start), then sends the buffer, skipping ids it already sent. Ids are allocated in commit order,
 * so `id > last sent` covers everything.
 */
function eventStream({
  db,
  hub,
  filter,
  after,
  settings,
  release,
}: {
  db: Db;
  hub: EventHub;
  filter: EventFilter;
  after: number | undefined;
  settings: EventStreamSettings;
  release: () => void;
}): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let live: PlatformEvent[] = [];
  let lastSent = after ?? 0;
  let replaying = after !== undefined;
  let started = false;
  let ended: string | undefined;
  let wake: (() => void) | undefined;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    subscription.unsubscribe();
    live = [];
    release();
    wake?.();
  };
  const end = (reason: string) => {
    ended ??= reason;
    finish();
  };
  const subscription = hub.subscribe(
    (events) => {
      if (finished) return;
      const wanted = events.filter((event) => matches(filter, event));
      if (wanted.length === 0) return;
      // Unread events never exceed the cap: the ones that would are not kept, the client is dropped.
      if (live.length + wanted.length > settings.maxBuffered) {
        end(
          `the client did not read: ${live.length + wanted.length} events would be waiting (the limit is ${settings.maxBuffered}); reconnect with Last-Event-ID to resume`,
        );
        return;
      }
      live.push(...wanted);
      wake?.();
    },
    () => end('the server is shutting down; reconnect with Last-Event-ID to resume'),
  );

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const send = (text: string) => controller.enqueue(encoder.encode(text));
        const close = () => {
          send(`event: dropped\ndata: ${JSON.stringify({ reason: ended })}\n\n`);
          controller.close();
        };
        if (!started) {
          started = true;
          try {
            await subscription.ready;
          } catch {
            end('the event log could not be read; reconnect with Last-Event-ID to resume');
          }
          if (ended) return close();
          send(`event: ready\ndata: ${JSON.stringify({ after: String(lastSent) })}\n\n`);
          return;
        }
        if (ended) return close();
        if (replaying) {
          let page: PlatformEvent[];
          try {
            page = await listEventsAfter(db, { after: lastSent, limit: settings.replayPage, filter });
          } catch {
            end('the event log could not be read; reconnect with Last-Event-ID to resume');
            return close();
          }
          if (ended) return close();
          if (page.length < settings.replayPage) replaying = false;
          if (page.length > 0) {
            lastSent = Number(page.at(-1)!.id);
            send(page.map(frame).join(''));
            return;
          }
        }
        for (;;) {
          const fresh = live.filter((event) => Number(event.id) > lastSent);
          live = [];
          if (fresh.length > 0) {
            lastSent = Number(fresh.at(-1)!.id);
            send(fresh.map(frame).join(''));
            return;
          }
          const woken = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), settings.keepAliveMs);
            wake = () => {
              clearTimeout(timer);
              resolve(true);
            };
          });
          wake = undefined;
          if (ended) return close();
          if (!woken) {
            send(': keep-alive\n\n');
            return;
          }
        }
      },
      cancel() {
        finish();
      },
    },
    // Nothing is read ahead: an event leaves `live` only when the client asks for the next chunk.
    { highWaterMark: 0 },
  );
}

/** GET /api/events (SSE) and GET /api/events/history (JSON): the event log, live and paged. */
export function eventRoutes({
  db,
  hub,
  settings = defaultEventStreamSettings,
}: {
  db: Db;
  hub: EventHub;
  settings?: EventStreamSettings;
}) {
  const router = createRouter();
  const open = new Map<string, number>();

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/events',
      tags: ['events'],
      summary: 'The event log as server-sent events: replayed after an id, then live',
      description:
        'Each event is sent as `id: <id>`, `event: <type>`, `data: <PlatformEvent JSON>`. With the `Last-Event-ID` header ' +
        '(or `after`), the events after that id are replayed from the log first, then the stream continues live without a ' +
        'gap or a duplicate. `event: ready` opens the stream; a comment line keeps an idle stream open. An agent key sees ' +
        `only events with its own agent_id. At most ${settings.maxStreamsPerPrincipal} streams per caller (429 beyond); a ` +
        `client that leaves ${settings.maxBuffered} events unread is sent \`event: dropped\` with the reason, and the stream ends. ` +
        'See docs/events.md.',
      action: 'events.subscribe',
      request: {
        query: EventsQuery,
        headers: z.object({
          'last-event-id': EventId.optional().meta({
            description: 'The last id received; replaces `after`.',
          }),
        }),
      },
      responses: {
        200: {
          description: 'An endless event stream',
          content: { 'text/event-stream': { schema: z.string() } },
        },
      },
      problems: [429],
    }),
    (c) => {
      const principal = currentPrincipal(c.get('auth'));
      const query = c.req.valid('query');
      const filter = scopedFilter(principal, query);
      // EventSource resends its URL (with the first `after`) plus the header: the header is newer.
      const resumeFrom = c.req.valid('header')['last-event-id'] ?? query.after;
      const key = principalKey(principal);
      const count = open.get(key) ?? 0;
      if (count >= settings.maxStreamsPerPrincipal) {
        throw new ProblemError(
          'too_many_requests',
          `This caller already has ${count} event streams open (the limit is ${settings.maxStreamsPerPrincipal}); close one first.`,
          { headers: { 'retry-after': '5' } },
        );
      }
      open.set(key, count + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const left = (open.get(key) ?? 1) - 1;
        if (left > 0) open.set(key, left);
        else open.delete(key);
      };
      const body = eventStream({
        db,
        hub,
        filter,
        after: resumeFrom === undefined ? undefined : Number(resumeFrom),
        settings,
        release,
      });
      return c.body(body, 200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        // Tells nginx-like proxies not to buffer the stream.
        'x-accel-buffering': 'no',
      });
    },
  );

  router.openapi(
    protectedRoute({
      method: 'get',
      path: '/api/events/history',
      tags: ['events'],
      summary: 'The event log as JSON pages, oldest first, after an id',
      description:
        'The same events, filters and role rules as GET /api/events. Page with `after` = `next_after` of the previous ' +
        'page; `next_after` is null once a page reached the end (ask again later with the last id to poll).',
      action: 'events.subscribe',
      request: { query: EventHistoryQuery },
      responses: {
        200: { description: 'One page of events', content: { 'application/json': { schema: EventPage } } },
      },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const filter = scopedFilter(currentPrincipal(c.get('auth')), query);
      const items = await listEventsAfter(db, { after: query.after ?? 0, limit: query.limit, filter });
      const next_after = items.length === query.limit ? items.at(-1)!.id : null;
      return c.json({ items, next_after }, 200);
    },
  );
  return router;
}
