import { DatabaseUnavailableError, type Db } from '@devart/db';
import { OpenAPIHono } from '@hono/zod-openapi';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { expectProblem } from '../../../../test/http';
import { onError } from '../problem';
import { healthRoutes } from './health';

const secretText = 'connect ECONNREFUSED 10.1.2.3:5432 (user "devart_owner", password "hunter2")';

/** The health routes over a database whose every query throws `error`, and what they log. */
function readyWith(error: unknown) {
  const db = {
    kind: 'postgres',
    query: async () => {
      throw error;
    },
  } as unknown as Db;
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
  const app = new OpenAPIHono();
  app.onError(onError(logger));
  app.route('/', healthRoutes({ db, logger }));
  return { request: () => app.request('/ready'), lines };
}

describe('GET /ready when the database fails', () => {
  it('answers 503 with a fixed sentence and the error class, never the driver’s text', async () => {
    const { request, lines } = readyWith(new Error(secretText));
    const res = await request();
    const text = await res.clone().text();
    const problem = await expectProblem(res, 503, 'not_ready');
    expect(problem.detail).toBe('The database does not answer (Error); the server log has the details.');
    expect(text).not.toMatch(/10\.1\.2\.3|devart_owner|hunter2|ECONNREFUSED/);
    // The operator still finds the cause in the log.
    expect(lines.join('')).toContain('ECONNREFUSED 10.1.2.3:5432');
  });

  it('names an outage by its class and leaves its logging to the availability tracker', async () => {
    const { request, lines } = readyWith(
      new DatabaseUnavailableError(secretText, { cause: new Error(secretText) }),
    );
    const res = await request();
    const text = await res.clone().text();
    const problem = await expectProblem(res, 503, 'not_ready');
    expect(problem.detail).toContain('(DatabaseUnavailableError)');
    expect(text).not.toContain('hunter2');
    expect(lines).toEqual([]);
  });
});
