import type { TaskRow } from '@devart/db';
import { Hono } from 'hono';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { onError, problemOf, statusOf } from './problem';
import { answerItem } from './routes/batch-items';
import {
  ConflictError,
  type DomainError,
  type DomainErrorCode,
  ForbiddenError,
  NotFoundError,
  TooManyRequestsError,
  UnavailableError,
  ValidationError,
} from './services/domain-errors';

const oneOfEach: Record<DomainErrorCode, DomainError> = {
  not_found: new NotFoundError('No task 7d.'),
  conflict: new ConflictError('Task 7d is held by another agent.'),
  forbidden: new ForbiddenError('This sandbox belongs to another agent.'),
  unavailable: new UnavailableError('The cluster did not answer.', { retryAfterSeconds: 30 }),
  validation: new ValidationError([{ location: 'query', field: 'cursor', message: 'is not a valid cursor' }]),
  too_many_requests: new TooManyRequestsError('Sandbox s already runs 4 commands.', { retryAfterSeconds: 1 }),
};

/** What a route answers when its service throws `error`. */
async function answerOf(error: Error) {
  const app = new Hono();
  app.onError(onError(pino({ level: 'silent' })));
  app.get('/thing', () => {
    throw error;
  });
  const res = await app.request('/thing');
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('the problem table', () => {
  it('answers every domain error with the status, type and detail of its code, on a single call and as a batch item alike', async () => {
    const expected = {
      not_found: 404,
      conflict: 409,
      forbidden: 403,
      unavailable: 503,
      validation: 400,
      too_many_requests: 429,
    };
    for (const [code, error] of Object.entries(oneOfEach) as [DomainErrorCode, DomainError][]) {
      const single = await answerOf(error);
      expect(single.status).toBe(expected[code]);
      expect(statusOf(code)).toBe(expected[code]);
      expect(single.headers.get('content-type')).toBe('application/problem+json');
      expect(single.body).toMatchObject({
        type: `urn:devart:problem:${code}`,
        status: expected[code],
        detail: error.message,
      });
      expect(answerItem({ task_id: 't', refused: error })).toEqual({
        task_id: 't',
        status: single.status,
        detail: single.body.detail,
      });
    }
  });

  it('sets Retry-After only for an unavailability worth retrying and a limit reached, and lists field errors of a validation', async () => {
    expect((await answerOf(oneOfEach.unavailable)).headers.get('retry-after')).toBe('30');
    expect((await answerOf(oneOfEach.too_many_requests)).headers.get('retry-after')).toBe('1');
    expect(
      (await answerOf(new UnavailableError('No sandbox provider here.'))).headers.get('retry-after'),
    ).toBeNull();
    const validation = await answerOf(oneOfEach.validation);
    expect(validation.body).toMatchObject({
      detail: 'query.cursor: is not a valid cursor',
      errors: [{ location: 'query', field: 'cursor', message: 'is not a valid cursor' }],
    });
    expect(problemOf(oneOfEach.conflict).extra).toEqual({});
  });

  it('answers a batch item that went through as 200 with its lease', () => {
    const task = { attempt: 2, lease_expires_at: new Date('2026-12-01T10:00:00Z') } as TaskRow;
    expect(answerItem({ task_id: 't', task })).toEqual({
      task_id: 't',
      status: 200,
      attempt: 2,
      lease_expires_at: '2026-12-01T10:00:00.000Z',
    });
  });
});
