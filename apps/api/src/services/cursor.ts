import { inDateTimeRange } from '@devart/contracts';
import { ValidationError } from './domain-errors';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// PostgreSQL's text form of a timestamptz (`2026-12-01 10:00:00.123456+00`, `…+05:30`, and
// `…+00:09:21` for zones whose offset once had seconds), and the ISO form with a `T` or `Z`.
const timestampPattern =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:Z|([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)$/;

/**
 * The instant a timestamp in PostgreSQL's text form names, or undefined when it is not a real
 * date (month 13, February 30, an offset of +99) or lies outside DATE_TIME_RANGE: PostgreSQL
 * would refuse such a value with an error rather than a row, so it must never reach a query.
 * @example timestampInstant('2026-12-01 10:00:00.5+01') // 2026-12-01T09:00:00.500Z
 */
export function timestampInstant(text: string): Date | undefined {
  const m = timestampPattern.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [offsetHours, offsetMinutes, offsetSeconds] = [m[9], m[10], m[11]].map((v) => Number(v ?? 0)) as [
    number,
    number,
    number,
  ];
  // PostgreSQL keeps offsets within ±15:59:59.
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  if (offsetHours > 15 || offsetMinutes > 59 || offsetSeconds > 59) return undefined;
  const wall = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls month 13 or day 31 over; a real date comes back as it went in.
  if (wall.getUTCFullYear() !== year || wall.getUTCMonth() !== month - 1 || wall.getUTCDate() !== day) {
    return undefined;
  }
  const sign = m[8] === '-' ? -1 : 1;
  const ms =
    wall.getTime() +
    Math.round(Number(m[7] ?? 0) * 1000) -
    sign * (offsetHours * 3600 + offsetMinutes * 60 + offsetSeconds) * 1000;
  return inDateTimeRange(ms) ? new Date(ms) : undefined;
}

/** True for a UUID as this API hands them out (lowercase). */
export const isCanonicalUuid = (value: unknown): value is string =>
  typeof value === 'string' && uuidPattern.test(value);

/** The 400 for a cursor this API did not hand out, or one altered since. */
export function invalidCursor(why = 'is not a valid cursor'): ValidationError {
  return new ValidationError([{ location: 'query', field: 'cursor', message: why }]);
}

/** Opaque keyset cursor of a (created_at, id) position; created_at is kept as PostgreSQL's full-precision text. */
export function encodeCursor(position: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

/**
 * The position a cursor names. Every part is checked as the query will read it (a real
 * instant in range, a UUID), so a crafted cursor is a 400 naming `cursor`, never a database error.
 */
export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(decoded) || decoded.length !== 2) throw invalidCursor();
  const [createdAt, id] = decoded as unknown[];
  if (typeof createdAt !== 'string' || !timestampInstant(createdAt) || !isCanonicalUuid(id)) {
    throw invalidCursor();
  }
  return { createdAt, id };
}
