/** HTTP plumbing of the fake: Status answers, query and body parsing, label selectors. */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** A response the handler throws or returns: status code plus JSON body. */
export class Answer {
  constructor(
    readonly code: number,
    readonly body: unknown,
  ) {}
}

/** A Kubernetes `Status` failure, the body of every error answer. */
export function statusFailure(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Answer {
  return new Answer(code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

export function notFound(resource: string, name: string): Answer {
  return statusFailure(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

/** Equality-based label selectors (`a=b,c!=d,e,!f`); set-based ones are a 400, as if malformed. */
export function parseSelector(selector: string): (labels: Record<string, string>) => boolean {
  const tests = selector
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = /^(!?)([^=!\s]+)\s*(?:(==|=|!=)\s*(\S*))?$/.exec(part);
      if (!match) throw statusFailure(400, 'BadRequest', `unable to parse requirement: "${part}"`);
      const [, not, key, op, value] = match;
      if (op === undefined) return (l: Record<string, string>) => key! in l !== (not === '!');
      if (not) throw statusFailure(400, 'BadRequest', `unable to parse requirement: "${part}"`);
      return op === '!='
        ? (l: Record<string, string>) => l[key!] !== value
        : (l: Record<string, string>) => l[key!] === value;
    });
  return (labels) => tests.every((test) => test(labels));
}

export function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0]! : values;
  }
  return query;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw statusFailure(400, 'BadRequest', `the body is not JSON: ${(error as Error).message}`);
  }
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A refused upgrade is a plain HTTP response on the raw socket, as the API server sends it. */
export function rejectUpgrade(socket: Duplex, answer: Answer): void {
  const body = JSON.stringify(answer.body);
  socket.end(
    `HTTP/1.1 ${answer.code} ${statusText(answer.code)}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function statusText(code: number): string {
  return (
    (
      { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' } as Record<
        number,
        string
      >
    )[code] ?? 'Error'
  );
}
