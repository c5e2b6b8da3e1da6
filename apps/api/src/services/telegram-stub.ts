import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A sendMessage the stub accepted. */
export interface StubMessage {
  chat_id: string;
  text: string;
  parse_mode?: string;
  at: number;
}

/** Every request the stub answered, accepted or not. */
export interface StubRequest {
  path: string;
  status: number;
  chat_id?: string;
  at: number;
}

export interface TelegramStub {
  /** The stub's base URL, for TELEGRAM_API_URL. */
  readonly url: string;
  readonly messages: StubMessage[];
  readonly requests: StubRequest[];
  /** Answers the next `count` sendMessage calls 429 with `parameters.retry_after` (and Retry-After). */
  throttleNext(count: number, retryAfterSeconds: number): void;
  /** Stops listening and cuts open connections: the Bot API is down. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A local Bot API for tests, answering as the real one does: `POST /bot<token>/sendMessage` with
 * `{ ok: true, result: { message_id } }`; a path with another token → 401 Unauthorized; a method
 * it does not know → 404; a missing chat_id or text → 400. Test code only.
 */
export async function startTelegramStub({ token }: { token: string }): Promise<TelegramStub> {
  const messages: StubMessage[] = [];
  const requests: StubRequest[] = [];
  let throttle = { count: 0, retryAfter: 1 };
  let messageId = 0;

  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return {};
    }
  };

  const server: Server = createServer(async (req, res) => {
    const body = await readJson(req);
    const path = req.url ?? '/';
    const answer = (status: number, json: Record<string, unknown>, headers: Record<string, string> = {}) => {
      requests.push({
        path: path.replace(token, '<token>'),
        status,
        chat_id: body.chat_id as string,
        at: Date.now(),
      });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(json));
    };
    const match = /^\/bot([^/]+)\/(\w+)$/.exec(path);
    if (!match || req.method !== 'POST')
      return answer(404, { ok: false, error_code: 404, description: 'Not Found' });
    if (match[1] !== token) return answer(401, { ok: false, error_code: 401, description: 'Unauthorized' });
    if (match[2] !== 'sendMessage')
      return answer(404, { ok: false, error_code: 404, description: 'Not Found' });
    if (body.chat_id === undefined || typeof body.text !== 'string' || body.text === '')
      return answer(400, { ok: false, error_code: 400, description: 'Bad Request: message text is empty' });
    if (throttle.count > 0) {
      throttle.count--;
      return answer(
        429,
        {
          ok: false,
          error_code: 429,
          description: `Too Many Requests: retry after ${throttle.retryAfter}`,
          parameters: { retry_after: throttle.retryAfter },
        },
        { 'retry-after': String(throttle.retryAfter) },
      );
    }
    messages.push({
      chat_id: String(body.chat_id),
      text: body.text,
      parse_mode: body.parse_mode as string | undefined,
      at: Date.now(),
    });
    answer(200, {
      ok: true,
      result: { message_id: ++messageId, chat: { id: body.chat_id }, text: body.text },
    });
  });

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    messages,
    requests,
    throttleNext(count, retryAfterSeconds) {
      throttle = { count, retryAfter: retryAfterSeconds };
    },
    async down() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
    up: () => listen(port),
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
