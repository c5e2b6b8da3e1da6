import { DatabaseUnavailableError } from '@devart/db';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  DomainError,
  describeFieldErrors,
  type FieldError,
  fieldErrors,
  TooManyRequestsError,
  UnavailableError,
  ValidationError,
} from './services/domain-errors';

export { describeFieldErrors, type FieldError, fieldErrors };

/**
 * The one table of problem types: for each stable code, the HTTP status and the title every
 * answer carries. Domain errors (services/domain-errors.ts) use the same codes, so a single
 * call's problem and a batch item's status are both read from here.
 */
const problemTypes = {
  validation: { status: 400, title: 'Invalid request' },
  malformed_json: { status: 400, title: 'Malformed JSON' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Forbidden' },
  not_found: { status: 404, title: 'Not found' },
  // Also an agent acting on a task it no longer holds (another agent's, or a later attempt):
  // the task moved on, the agent did nothing wrong, and the SDK drops its work on a 409.
  conflict: { status: 409, title: 'Conflict' },
  gone: { status: 410, title: 'Gone' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  too_many_requests: { status: 429, title: 'Too many requests' },
  internal: { status: 500, title: 'Internal server error' },
  not_ready: { status: 503, title: 'Not ready' },
  unavailable: { status: 503, title: 'Service unavailable' },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string }>;

export type ProblemCode = keyof typeof problemTypes;

/** The HTTP status a problem code answers with. */
export function statusOf(code: ProblemCode): ContentfulStatusCode {
  return problemTypes[code].status;
}

/**
 * An error with a stable code; `onError` is the one place that turns it into an
 * `application/problem+json` response. Services throw domain errors instead; this is for the
 * HTTP layer's own refusals (authentication, bodies, removed routes).
 * @example throw new ProblemError('gone', 'Polling for tasks was removed: …')
 */
export class ProblemError extends Error {
  override name = 'ProblemError';
  constructor(
    readonly code: ProblemCode,
    readonly detail: string,
    readonly extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

/** A domain error as the problem it answers: its code and message, field errors, and Retry-After when a retry is worth it. */
export function problemOf(error: DomainError): ProblemError {
  return new ProblemError(error.code, error.message, {
    ...(error instanceof ValidationError ? { errors: error.errors } : {}),
    ...((error instanceof UnavailableError || error instanceof TooManyRequestsError) &&
    error.retryAfterSeconds !== undefined
      ? { headers: { 'retry-after': String(error.retryAfterSeconds) } }
      : {}),
  });
}

export function problemResponse(c: Context, error: ProblemError): Response {
  const { status, title } = problemTypes[error.code] ?? problemTypes.internal;
  const body = {
    type: `urn:devart:problem:${error.code}`,
    title,
    status,
    detail: error.detail,
    instance: c.req.path,
    ...(error.extra.errors ? { errors: error.extra.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...error.extra.headers },
  });
}

// Hono names validation targets after the parser; people know them as the body, the path and the query.
const locations: Record<string, string> = { json: 'body', param: 'path', query: 'query', header: 'header' };

/**
 * A 400 naming each bad field, its detail written as every validation problem's is.
 * @example throw fieldProblem([{ location: 'path', field: 'taskId', message: 'contains a NUL character' }])
 */
export function fieldProblem(errors: FieldError[]): ProblemError {
  return new ProblemError('validation', describeFieldErrors(errors), { errors });
}

export function validationProblem(target: string, issues: readonly z.core.$ZodIssue[]): ProblemError {
  return fieldProblem(fieldErrors(locations[target] ?? target, issues));
}

/** Seconds a client should wait before trying again while the database is unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

export function databaseUnavailable(error: DatabaseUnavailableError): UnavailableError {
  const detail = error.commitUnknown
    ? 'The database connection broke while the change was being committed, so it may or may not have been applied. Read the resource before trying again.'
    : 'The database is unreachable right now; nothing was changed. Try again shortly.';
  return new UnavailableError(detail, { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS });
}

/**
 * The problem an error answers, or undefined for an unexpected one (a bug: logged, answered 500).
 * @example const problem = asProblem(error); if (problem) body.error = { type: `urn:devart:problem:${problem.code}`, detail: problem.detail };
 */
export function asProblem(error: unknown): ProblemError | undefined {
  if (error instanceof ProblemError) return error;
  if (error instanceof DomainError) return problemOf(error);
  if (error instanceof DatabaseUnavailableError) return problemOf(databaseUnavailable(error));
  return undefined;
}

/** The single error handler: domain problems, Hono's own exceptions, then anything else as a bare 500. */
export function onError(logger: Logger) {
  return function handleError(error: Error, c: Context): Response {
    // A database outage is not logged here: the availability tracker logs one warning per outage, not one per request.
    const problem = asProblem(error);
    if (problem) return problemResponse(c, problem);
    if (error instanceof HTTPException) {
      if (/malformed json/i.test(error.message)) {
        return problemResponse(
          c,
          new ProblemError('malformed_json', 'The request body is not valid JSON.', {
            errors: [{ location: 'body', field: 'body', message: 'is not valid JSON' }],
          }),
        );
      }
      const code =
        (Object.keys(problemTypes) as ProblemCode[]).find((k) => problemTypes[k].status === error.status) ??
        'internal';
      return problemResponse(c, new ProblemError(code, error.message || problemTypes[code].title));
    }
    logger.error(
      { err: error, request_id: c.get('requestId' as never), path: c.req.path },
      'unhandled error',
    );
    return problemResponse(
      c,
      new ProblemError('internal', 'Something went wrong on our side; it has been logged.'),
    );
  };
}
