import { DatabaseUnavailableError, type Db, migrationStatus } from '@devart/db';
import { createRoute, z } from '@hono/zod-openapi';
import type { Logger } from 'pino';
import { ProblemError } from '../problem';
import { createRouter } from './route-kit';

const Health = z.object({ status: z.literal('ok') });
const Ready = z.object({ status: z.literal('ready'), database: z.enum(['pglite', 'postgres']) });

/** The class of what was thrown (`DatabaseUnavailableError`, `Error`): enough to tell outages apart, nothing of the message. */
function errorClass(error: unknown): string {
  if (error instanceof Error) return error.constructor.name || 'Error';
  return typeof error;
}

export function healthRoutes({ db, logger }: { db: Db; logger?: Logger }) {
  const router = createRouter();

  router.openapi(
    createRoute({
      method: 'get',
      path: '/health',
      tags: ['health'],
      summary: 'The process is up (liveness)',
      responses: { 200: { description: 'Up', content: { 'application/json': { schema: Health } } } },
    }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  router.openapi(
    createRoute({
      method: 'get',
      path: '/ready',
      tags: ['health'],
      summary: 'The database answers and every migration is applied (readiness)',
      responses: {
        200: { description: 'Ready', content: { 'application/json': { schema: Ready } } },
        503: { description: 'Not ready; the problem says why' },
      },
    }),
    async (c) => {
      let pending: string[];
      try {
        pending = (await migrationStatus(db)).pending;
      } catch (error) {
        // /ready is unauthenticated: the driver's text (host names, users, SQL) goes to the log only,
        // where an outage already has its one warning from the availability tracker.
        if (!(error instanceof DatabaseUnavailableError))
          logger?.warn({ err: error }, '/ready: the migration status could not be read');
        throw new ProblemError(
          'not_ready',
          `The database does not answer (${errorClass(error)}); the server log has the details.`,
        );
      }
      if (pending.length > 0) {
        throw new ProblemError(
          'not_ready',
          `Migrations not applied yet: ${pending.join(', ')}. Run "devart migrate".`,
        );
      }
      return c.json({ status: 'ready' as const, database: db.kind }, 200);
    },
  );

  return router;
}
