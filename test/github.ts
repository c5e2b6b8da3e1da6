import { createHmac, randomUUID } from 'node:crypto';

/** The webhook secret test platforms are configured with. */
export const TEST_WEBHOOK_SECRET = 'test-webhook-secret-0123456789';

/** What GitHub puts in X-Hub-Signature-256 for `body` under `secret`. */
export function githubSignature(body: string, secret = TEST_WEBHOOK_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A pull_request payload as GitHub sends it, with the fields devart reads (and a few it does not). */
export function pullRequestPayload({
  action = 'opened',
  repository = 'acme/app',
  number = 42,
  title = 'Add the thing',
  headRef = 'feature/thing',
  baseRef = 'main',
  sha = 'c0ffee0000000000000000000000000000000042',
  sender = 'octocat',
}: {
  action?: string;
  repository?: string;
  number?: number;
  title?: string;
  headRef?: string;
  baseRef?: string;
  sha?: string;
  sender?: string;
} = {}) {
  return {
    action,
    number,
    pull_request: {
      number,
      title,
      state: 'open',
      draft: false,
      html_url: `https://github.com/${repository}/pull/${number}`,
      user: { login: sender, id: 1 },
      head: { ref: headRef, sha, repo: { full_name: repository } },
      base: { ref: baseRef, sha: 'b'.repeat(40), repo: { full_name: repository } },
      body: 'Please review.',
    },
    repository: {
      id: 1296269,
      full_name: repository,
      html_url: `https://github.com/${repository}`,
      private: false,
    },
    sender: { login: sender, id: 1, type: 'User' },
    installation: { id: 4242 },
  };
}

/** A push payload as GitHub sends it. */
export function pushPayload({
  repository = 'acme/app',
  ref = 'refs/heads/main',
  after = 'feed000000000000000000000000000000000042',
  deleted = false,
  sender = 'octocat',
}: {
  repository?: string;
  ref?: string;
  after?: string;
  deleted?: boolean;
  sender?: string;
} = {}) {
  return {
    ref,
    before: 'a'.repeat(40),
    after,
    created: false,
    deleted,
    forced: false,
    compare: `https://github.com/${repository}/compare/aaaa...${after.slice(0, 12)}`,
    commits: [],
    repository: { id: 1296269, full_name: repository, html_url: `https://github.com/${repository}` },
    pusher: { name: sender },
    sender: { login: sender, id: 1 },
  };
}

/**
 * The request GitHub would send for `payload`: signed with `secret` (or with the `signature`
 * given, or none when it is null), X-GitHub-Event and X-GitHub-Delivery set.
 */
export function githubDelivery(
  event: string,
  payload: unknown,
  {
    deliveryId = randomUUID(),
    secret = TEST_WEBHOOK_SECRET,
    signature,
  }: { deliveryId?: string; secret?: string; signature?: string | null } = {},
): { deliveryId: string; init: RequestInit } {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/test',
    'x-github-event': event,
    'x-github-delivery': deliveryId,
    'x-github-hook-id': '1',
  };
  const sig = signature === undefined ? githubSignature(body, secret) : signature;
  if (sig !== null) headers['x-hub-signature-256'] = sig;
  return { deliveryId, init: { method: 'POST', headers, body } };
}
