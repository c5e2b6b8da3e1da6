import { z } from 'zod';

/**
 * Any 8-4-4-4-12 hex id, as PostgreSQL's uuid type accepts it, lowercased. PostgreSQL compares
 * uuids whatever their case but TypeScript compares strings: an id in capitals would match the
 * row, then miss every `===` after it (a started task answered 404, a run never advanced), so
 * every id is made canonical here, where it enters.
 * @example Uuid.parse('7D0A…') // '7d0a…'
 */
export const Uuid = z.guid({ error: 'must be a UUID' }).toLowerCase();

/** The largest value of PostgreSQL's `int` (int4) columns: attempts, counts, priorities. */
export const INT4_MAX = 2_147_483_647;

/**
 * A whole number in a query string: digits only, so `0x10`, `1e1` and ` 5 ` are refused rather
 * than read as 16, 10 and 5 as Number() would.
 * @example limit: queryInt({ min: 1, max: 200 }).default(50)
 */
export function queryInt({ min, max }: { min: number; max: number }) {
  return z
    .string()
    .regex(/^[0-9]{1,10}$/, { error: `must be a whole number from ${min} to ${max} (digits only)` })
    .transform(Number)
    .pipe(z.int().min(min).max(max));
}

/**
 * The instants a date-time may name. PostgreSQL's timestamptz and JavaScript's Date hold far
 * more, but not the same more (PostgreSQL has no year 0, JavaScript no BC era), and nothing
 * devart stores predates 1970: both ends are kept where every layer agrees.
 */
export const DATE_TIME_RANGE = { min: '1970-01-01T00:00:00Z', max: '9999-12-31T23:59:59.999Z' } as const;

/** True when `ms` (since the epoch) lies within DATE_TIME_RANGE. */
export function inDateTimeRange(ms: number): boolean {
  return ms >= Date.parse(DATE_TIME_RANGE.min) && ms <= Date.parse(DATE_TIME_RANGE.max);
}

/** An ISO-8601 date-time with an offset, within DATE_TIME_RANGE. */
export const DateTime = z.iso
  .datetime({ offset: true, error: 'must be an ISO-8601 date-time, e.g. 2026-11-01T00:00:00Z' })
  .refine((value) => inDateTimeRange(Date.parse(value)), {
    error: `must lie between ${DATE_TIME_RANGE.min} and 9999-12-31T23:59:59Z`,
    // A value that is no date-time at all has its issue already: one issue per field.
    when: (payload) => payload.issues.length === 0,
  });

/** A lowercase slug: capabilities (they name queues) and step keys. */
export const Slug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, {
  error: 'must be a lowercase slug (a-z, 0-9, "-", "_"; at most 64 characters)',
});

export const Capability = Slug.meta({ example: 'shell' });

/**
 * A JSON object (not an array or a scalar), passed on as it came. Not `z.record`: that copies the
 * object by assignment, so a `__proto__` key would vanish from the data instead of being kept.
 */
export const JsonObject = z
  .custom<Record<string, unknown>>(
    (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
    { error: 'must be a JSON object' },
  )
  .meta({ type: 'object', additionalProperties: {} });

/** RFC 9457 problem details, as every error of the API is answered. */
export const Problem = z
  .object({
    type: z.string().meta({ example: 'urn:devart:problem:validation' }),
    title: z.string(),
    status: z.int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z
      .array(z.object({ location: z.string(), field: z.string(), message: z.string() }))
      .optional()
      .meta({ description: 'One entry per invalid field (validation problems only).' }),
  })
  .meta({ id: 'Problem' });
export type Problem = z.infer<typeof Problem>;
