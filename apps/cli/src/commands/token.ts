import { readSecret, signUserToken } from '@devart/api';
import { isUserRole } from '@devart/core';
import { parseDuration, parseFlags, UsageError } from '../args';
import { type CommandContext, configFromEnv } from '../context';

export const tokenHelp = `Usage: devart token --role <viewer|supervisor|admin> [--sub <uuid>] [--email <e>] [--ttl 1h]

Prints only a signed user JWT on stdout, so it composes:
  curl -H "Authorization: Bearer $(npx devart token --role admin)" http://127.0.0.1:8787/api/agents
Signs with JWT_SECRET, or with the secret "devart start" created in DEVART_DATA_DIR.
Needs no database, so it works while the server runs.

Options:
  --role <role>   viewer, supervisor or admin (required)
  --sub <uuid>    the user id (default: a fixed id per role, so tokens act as the same user)
  --email <e>     the email claim
  --ttl <d>       lifetime such as 15m, 1h, 7d (default 1h, at most 30d)
  -h, --help      show this help`;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function token(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, {
    role: { type: 'string' },
    sub: { type: 'string' },
    email: { type: 'string' },
    ttl: { type: 'string' },
  });
  if (values.help) {
    ctx.out(tokenHelp);
    return 0;
  }
  if (values.role === undefined) throw new UsageError('--role is required (viewer, supervisor or admin)');
  if (!isUserRole(values.role)) {
    throw new UsageError(`--role must be viewer, supervisor or admin (got "${values.role}")`);
  }
  if (values.sub !== undefined && !uuid.test(values.sub)) {
    throw new UsageError(`--sub must be a UUID (got "${values.sub}")`);
  }
  if (values.email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(values.email)) {
    throw new UsageError(`--email must be an email address (got "${values.email}")`);
  }
  const ttlSeconds = parseDuration('--ttl', values.ttl ?? '1h', { maxSeconds: 30 * 86_400 });
  const config = configFromEnv(ctx.env);
  const secret = config.JWT_SECRET ?? readSecret(config.DEVART_DATA_DIR);
  if (!secret) {
    ctx.err(
      `devart: no signing secret: set JWT_SECRET, or run "devart start" once so it creates ${config.DEVART_DATA_DIR}/jwt-secret`,
    );
    return 1;
  }
  ctx.out(
    await signUserToken(secret, { role: values.role, sub: values.sub, email: values.email, ttlSeconds }),
  );
  return 0;
}
