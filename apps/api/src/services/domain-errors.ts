/**
 * What a use case refuses, in the domain's words. Services throw these (or return them for the
 * items of a batch); `problem.ts` is the one place that turns a `code` into an HTTP status,
 * problem type and headers. The message is written for the person reading the answer: it becomes
 * the problem's `detail` as it is.
 */
import type { z } from 'zod';

/** One field a request got wrong, named where the client put it (`body`, `path`, `query`, `header`). */
export interface FieldError {
  location: string;
  field: string;
  message: string;
}

/** Turns zod issues into field errors that name the field, e.g. `body.capabilities[2]`. */
export function fieldErrors(location: string, issues: readonly z.core.$ZodIssue[]): FieldError[] {
  return issues.flatMap((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
    const base = path.replace(/^\./, '');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        location,
        field: base ? `${base}.${key}` : key,
        message: 'is not a known field',
      }));
    }
    return [{ location, field: base || location, message: issue.message }];
  });
}

/** The stable codes of domain errors; each is also the last part of a problem `type`. */
export type DomainErrorCode =
  | 'not_found'
  | 'conflict'
  | 'forbidden'
  | 'unavailable'
  | 'validation'
  | 'too_many_requests';

export abstract class DomainError extends Error {
  abstract readonly code: DomainErrorCode;
}

/**
 * The thing named does not exist (or the caller may not know that it does).
 * @example throw new NotFoundError(`No task ${taskId}.`)
 */
export class NotFoundError extends DomainError {
  override name = 'NotFoundError';
  readonly code = 'not_found';
}

/**
 * The thing exists but its state does not allow this now: a task in another status, an attempt
 * that moved on, a task another agent holds, a name already taken.
 * @example throw new ConflictError(`Task ${taskId} is DONE and can no longer be cancelled.`)
 */
export class ConflictError extends DomainError {
  override name = 'ConflictError';
  readonly code = 'conflict';
}

/**
 * The caller is known and the thing exists, but it is someone else's to act on.
 * @example throw new ForbiddenError('This sandbox belongs to another agent.')
 */
export class ForbiddenError extends DomainError {
  override name = 'ForbiddenError';
  readonly code = 'forbidden';
}

/**
 * Something this needs is missing or failed. With `retryAfterSeconds` the failure is passing and
 * another try is worth it; without, retrying will not help until the installation changes.
 * @example throw new UnavailableError('The cluster did not answer.', { retryAfterSeconds: 30 })
 */
export class UnavailableError extends DomainError {
  override name = 'UnavailableError';
  readonly code = 'unavailable';
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, { retryAfterSeconds }: { retryAfterSeconds?: number } = {}) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The caller already has as much of something running as a limit allows; it may come back
 * after `retryAfterSeconds`.
 * @example throw new TooManyRequestsError('Sandbox sbx-1 already runs 4 commands …', { retryAfterSeconds: 1 })
 */
export class TooManyRequestsError extends DomainError {
  override name = 'TooManyRequestsError';
  readonly code = 'too_many_requests';
  readonly retryAfterSeconds: number;
  constructor(message: string, { retryAfterSeconds }: { retryAfterSeconds: number }) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The request is well-formed but a rule of the domain refuses fields of it. The message defaults
 * to every field as `location.field: message`, joined by `; `.
 * @example throw new ValidationError([{ location: 'query', field: 'cursor', message: 'is not a valid cursor' }])
 */
export class ValidationError extends DomainError {
  override name = 'ValidationError';
  readonly code = 'validation';
  constructor(
    readonly errors: FieldError[],
    message = describeFieldErrors(errors),
  ) {
    super(message);
  }
}

/** `body.steps[1].key: is used twice; query.cursor: is not a valid cursor` */
export function describeFieldErrors(errors: readonly FieldError[]): string {
  return errors
    .map((e) => `${e.location === e.field ? e.field : `${e.location}.${e.field}`}: ${e.message}`)
    .join('; ');
}
