/**
 * The address of a URL with its password replaced by `***`, for messages that reach a log.
 * @example maskedUrl('http://admin:s3cret@rabbit:15672') // 'http://admin:***@rabbit:15672'
 */
export function maskedUrl(value: string): string {
  const url = new URL(value);
  if (url.password) url.password = '***';
  return url.toString().replace(/\/$/, '');
}

/** Where the management URL came from, for the message: the variable, or how it was derived. */
export type ManagementUrlSource = 'RABBITMQ_MANAGEMENT_URL' | 'derived from AMQP_URL';

/**
 * Why devart cannot use the RabbitMQ management API at `url`, in one message naming
 * RABBITMQ_MANAGEMENT_URL and the rabbitmq_management plugin, or undefined when it can: the API
 * answers `GET /api/whoami` for a user tagged administrator. With AMQP_URL, devart gives every
 * agent a broker user of its own through this API, so without it no agent can register
 * (`POST /api/agents` would answer 503): start-up checks once and stops rather than serve that.
 * @example
 * await managementApiProblem('http://guest:guest@127.0.0.1:1', 'RABBITMQ_MANAGEMENT_URL')
 * // 'The RabbitMQ management API at http://guest:***@127.0.0.1:1 (RABBITMQ_MANAGEMENT_URL) did not answer (…)…'
 */
export async function managementApiProblem(
  url: string,
  source: ManagementUrlSource,
  { fetch: doFetch = fetch, timeoutMs = 5000 }: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<string | undefined> {
  const parsed = new URL(url);
  const authorization = `Basic ${Buffer.from(
    `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`,
  ).toString('base64')}`;
  const where = `The RabbitMQ management API at ${maskedUrl(url)} (${source})`;
  const fix =
    'devart gives each agent a broker user of its own through it, so agents could not register. ' +
    'Enable the rabbitmq_management plugin (rabbitmq-plugins enable rabbitmq_management, or the ' +
    'rabbitmq:management image) and set RABBITMQ_MANAGEMENT_URL to http(s)://<admin user>:<password>@<host>:15672.';
  const endpoint = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}/api/whoami`;
  let response: Response;
  try {
    response = await doFetch(endpoint, {
      headers: { authorization },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code ?? cause?.message ?? (error as Error).message;
    return `${where} did not answer (${reason}). ${fix}`;
  }
  if (response.status === 401) {
    return `${where} refused its user name and password (401). Set RABBITMQ_MANAGEMENT_URL with the credentials of a RabbitMQ user tagged administrator.`;
  }
  if (!response.ok) return `${where} answered ${response.status} to GET /api/whoami. ${fix}`;
  const whoami = (await response.json().catch(() => undefined)) as { tags?: unknown } | undefined;
  if (whoami === undefined)
    return `${where} answered something other than JSON: is it the management API? ${fix}`;
  // RabbitMQ before 3.9 lists tags as one comma-separated string, later versions as an array.
  const tags = Array.isArray(whoami.tags) ? whoami.tags : String(whoami.tags ?? '').split(',');
  if (!tags.map((t) => String(t).trim()).includes('administrator')) {
    return `${where} answered, but its user is not tagged administrator, which creating agents' users needs. Set RABBITMQ_MANAGEMENT_URL with an administrator's credentials.`;
  }
  return undefined;
}
