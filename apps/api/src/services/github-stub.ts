/**
 * A local GitHub REST API for tests (test code only): the GitHub App's token exchange and the
 * check run and issue comment endpoints the write-back calls, refusing what GitHub would refuse.
 *
 * - `POST /app/installations/{id}/access_tokens` takes only `Authorization: Bearer <JWT>` signed
 *   RS256 by the App's key (checked with its public key), `iss` = the App id, `iat` not in the
 *   future, `exp` not passed and at most 10 minutes after `iat`; another installation → 404.
 * - Every other endpoint takes only a token that exchange issued (`token …` or `Bearer …`); the
 *   App's JWT itself or anything else → 401 Bad credentials. A repository the installation does
 *   not cover → 404.
 * - Check runs: `name` and a 40-hex `head_sha` required, `status` and `conclusion` as GitHub
 *   checks them (a completed check run needs a conclusion), `output` needs title and summary → 422.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { jwtVerify } from 'jose';

export interface StubCheckRun {
  id: number;
  repository: string;
  name: string;
  head_sha: string;
  external_id?: string;
  details_url?: string;
  status: string;
  conclusion?: string;
  started_at?: string;
  completed_at?: string;
  output?: { title: string; summary: string; text?: string };
  /** Every body it was created or updated with, oldest first. */
  history: Record<string, unknown>[];
}

export interface StubComment {
  id: number;
  repository: string;
  issue_number: number;
  body: string;
  created_at: string;
}

export interface StubRequest {
  method: string;
  path: string;
  status: number;
  /** Why it was refused, for 4xx. */
  message?: string;
}

export interface GithubStub {
  /** For GITHUB_API_URL. */
  readonly url: string;
  readonly appId: string;
  readonly installationId: number;
  /** The App's private key, PKCS#1 PEM as GitHub hands it out (GITHUB_PRIVATE_KEY). */
  readonly privateKey: string;
  readonly checkRuns: StubCheckRun[];
  readonly comments: StubComment[];
  readonly requests: StubRequest[];
  /** Installation tokens issued so far. */
  tokensIssued(): number;
  /** Answers the next `count` API calls (not the token exchange) with `status`, e.g. 502 or 429 with `retry-after`. */
  failNext(count: number, status: number, headers?: Record<string, string>): void;
  /** Stops listening and cuts open connections: GitHub is down. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

const HEX_SHA = /^[0-9a-f]{40}$/;
const STATUSES = ['queued', 'in_progress', 'completed'];
const CONCLUSIONS = [
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'success',
  'skipped',
  'stale',
  'timed_out',
];

export async function startGithubStub({
  appId = '4242',
  installationId = 77,
  repositories = ['acme/app'],
}: {
  appId?: string;
  installationId?: number;
  repositories?: string[];
} = {}): Promise<GithubStub> {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const publicKey: KeyObject = createPublicKey(privateKey);
  const covered = new Set(repositories.map((r) => r.toLowerCase()));
  const tokens = new Map<string, number>(); // token → expiry (ms)
  const checkRuns: StubCheckRun[] = [];
  const comments: StubComment[] = [];
  const requests: StubRequest[] = [];
  let failures = { count: 0, status: 500, headers: {} as Record<string, string> };
  let nextId = 1000;

  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown> | undefined> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (text === '') return {};
    try {
      const value = JSON.parse(text);
      return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : undefined;
    } catch {
      return undefined;
    }
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://stub');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const answer = (status: number, json: unknown, headers: Record<string, string> = {}) => {
      const message = status >= 400 ? (json as { message?: string }).message : undefined;
      requests.push({ method, path, status, ...(message ? { message } : {}) });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(json));
    };
    const refuse = (status: number, message: string) =>
      answer(status, { message, documentation_url: 'https://docs.github.com/rest' });
    const body = await readJson(req);
    if (body === undefined) return refuse(400, 'Problems parsing JSON');
    const authorization = req.headers.authorization ?? '';

    const exchange = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path);
    if (exchange && method === 'POST') {
      const jwt = /^Bearer (\S+)$/i.exec(authorization)?.[1];
      if (!jwt) return refuse(401, 'A JSON web token could not be decoded');
      try {
        const { payload, protectedHeader } = await jwtVerify(jwt, publicKey, { algorithms: ['RS256'] });
        const now = Math.floor(Date.now() / 1000);
        if (protectedHeader.alg !== 'RS256') throw new Error('alg');
        if (String(payload.iss) !== appId) return refuse(401, "'Issuer' claim ('iss') must be an Integer");
        if (typeof payload.iat !== 'number' || payload.iat > now + 60)
          return refuse(401, "'Issued at' claim ('iat') must be an Integer representing a time in the past");
        if (typeof payload.exp !== 'number' || payload.exp - payload.iat > 600)
          return refuse(401, "'Expiration time' claim ('exp') is too far in the future");
      } catch {
        return refuse(401, 'A JSON web token could not be decoded');
      }
      if (Number(exchange[1]) !== installationId) return refuse(404, 'Not Found');
      const token = `ghs_${randomBytes(18).toString('base64url')}`;
      const expiresAt = Date.now() + 3600_000;
      tokens.set(token, expiresAt);
      return answer(201, {
        token,
        expires_at: new Date(expiresAt).toISOString(),
        permissions: { checks: 'write', pull_requests: 'write', metadata: 'read' },
        repository_selection: 'selected',
      });
    }

    const token = /^(?:token|Bearer) (\S+)$/i.exec(authorization)?.[1];
    if (!token || (tokens.get(token) ?? 0) < Date.now()) return refuse(401, 'Bad credentials');
    if (failures.count > 0) {
      failures.count--;
      return answer(failures.status, { message: `stub failure ${failures.status}` }, failures.headers);
    }
    const repoMatch = /^\/repos\/([^/]+)\/([^/]+)(\/.*)$/.exec(path);
    if (!repoMatch) return refuse(404, 'Not Found');
    const repository = `${repoMatch[1]}/${repoMatch[2]}`;
    const rest = repoMatch[3]!;
    if (!covered.has(repository.toLowerCase())) return refuse(404, 'Not Found');

    const checkRunProblem = (fields: Record<string, unknown>, creating: boolean): string | undefined => {
      if (creating && (typeof fields.name !== 'string' || fields.name === '')) return 'name wasn’t supplied.';
      if (creating && (typeof fields.head_sha !== 'string' || !HEX_SHA.test(fields.head_sha)))
        return `No commit found for SHA: ${String(fields.head_sha)}`;
      if (fields.status !== undefined && !STATUSES.includes(String(fields.status))) return 'Invalid status';
      if (fields.conclusion !== undefined && !CONCLUSIONS.includes(String(fields.conclusion)))
        return 'Invalid conclusion';
      if (
        (fields.status === 'completed' || fields.completed_at !== undefined) &&
        fields.conclusion === undefined
      )
        return 'Conclusion must be provided when status is completed';
      const output = fields.output as { title?: unknown; summary?: unknown } | undefined;
      if (output !== undefined && (typeof output.title !== 'string' || typeof output.summary !== 'string'))
        return 'Output must have a title and a summary';
      if (output && String(output.summary).length > 65_535) return 'Output summary is too long';
      return undefined;
    };

    if (rest === '/check-runs' && method === 'POST') {
      const problem = checkRunProblem(body, true);
      if (problem) return refuse(422, problem);
      const run: StubCheckRun = {
        id: nextId++,
        repository,
        name: body.name as string,
        head_sha: body.head_sha as string,
        status: (body.status as string) ?? 'queued',
        ...(body as Partial<StubCheckRun>),
        history: [body],
      };
      run.repository = repository;
      checkRuns.push(run);
      return answer(201, { ...run, history: undefined });
    }
    const update = /^\/check-runs\/(\d+)$/.exec(rest);
    if (update && method === 'PATCH') {
      const run = checkRuns.find((r) => r.id === Number(update[1]) && r.repository === repository);
      if (!run) return refuse(404, 'Not Found');
      const problem = checkRunProblem(body, false);
      if (problem) return refuse(422, problem);
      Object.assign(run, body);
      run.history.push(body);
      return answer(200, { ...run, history: undefined });
    }
    const list = /^\/commits\/([^/]+)\/check-runs$/.exec(rest);
    if (list && method === 'GET') {
      const name = url.searchParams.get('check_name');
      const found = checkRuns.filter(
        (r) => r.repository === repository && r.head_sha === list[1] && (name === null || r.name === name),
      );
      return answer(200, {
        total_count: found.length,
        check_runs: found.map((r) => ({ ...r, history: undefined })),
      });
    }
    const issue = /^\/issues\/(\d+)\/comments$/.exec(rest);
    if (issue && method === 'POST') {
      if (typeof body.body !== 'string' || body.body === '') return refuse(422, 'body wasn’t supplied.');
      const comment: StubComment = {
        id: nextId++,
        repository,
        issue_number: Number(issue[1]),
        body: body.body,
        created_at: new Date().toISOString(),
      };
      comments.push(comment);
      return answer(201, comment);
    }
    if (issue && method === 'GET') {
      const since = url.searchParams.get('since');
      return answer(
        200,
        comments.filter(
          (c) =>
            c.repository === repository &&
            c.issue_number === Number(issue[1]) &&
            (since === null || c.created_at >= since),
        ),
      );
    }
    return refuse(404, 'Not Found');
  }

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });

  return {
    url: `http://127.0.0.1:${port}`,
    appId,
    installationId,
    privateKey,
    checkRuns,
    comments,
    requests,
    tokensIssued: () => tokens.size,
    failNext(count, status, headers = {}) {
      failures = { count, status, headers };
    },
    down: stop,
    up: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: async () => {
      if (server.listening) await stop();
    },
  };
}
