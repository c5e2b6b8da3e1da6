import { ProblemError } from '../problem';

/** Opaque keyset cursor of a (created_at, id) position; created_at is kept as PostgreSQL's full-precision text. */
export function encodeCursor(position: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

/** The position a cursor names; a cursor this API did not hand out is a 400 naming `cursor`. */
export function decodeCursor(cursor: string): { createdAt: string; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (
      typeof createdAt === 'string' &&
      /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:\d{2})?|Z)$/.test(createdAt) &&
      typeof id === 'string' &&
      /^[0-9a-f-]{36}$/i.test(id)
    ) {
      return { createdAt, id };
    }
  } catch {
    // falls through to the problem below
  }
  throw new ProblemError('validation', 'query.cursor: is not a cursor this API returned', {
    errors: [{ location: 'query', field: 'cursor', message: 'is not a cursor this API returned' }],
  });
}
