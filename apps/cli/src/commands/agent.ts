import { readFileSync } from 'node:fs';
import { createAgent } from '@devart/sdk';
import { parseFlags, UsageError } from '../args';
import type { CommandContext } from '../context';
import { createLogger, logFormat } from '../logger';
import { builtInCapabilities, referenceCallback } from '../reference-agent';

export const agentHelp = `Usage: devart agent --capability <list> --api <url> --amqp <url> [--key-file <path>] [--prefix <p>] [--concurrency N]

Runs the reference agent, built on the agent SDK: it consumes its task queues on RabbitMQ, takes
each task with the fenced start call, runs the built-in handler of its capability and reports the
result (or the failure). Stops gracefully on SIGTERM/SIGINT (in-flight tasks get a grace period).

Built-in capabilities:
  echo    returns the payload as the result (tasks without a capability are echoed too)
  shell   runs payload.command (an argv array) with payload.timeout_ms (default 60000); output capped
          at 64 KiB. It runs in a sandbox the API provisions for the task (bubblewrap on the API's
          host, or a Kubernetes Pod), without network and with only /workspace writable; never on
          this host. If the API cannot provide a sandbox, the task fails with its reason.

Options (each also read from the environment variable shown):
  --capability <list>  comma-separated capabilities, e.g. echo,shell   DEVART_CAPABILITIES
  --api <url>          devart API base URL, e.g. http://127.0.0.1:8787   DEVART_API_URL
  --key-file <path>    a file holding the agent's API key (dva_…) from    DEVART_AGENT_KEY_FILE
                       POST /api/agents; or the key itself in             DEVART_AGENT_KEY
                       (or DEVART_API_KEY, the Python SDK's name for it)
  --key <dva_…>        the key itself; every local user can read it in ps and /proc while the
                       agent runs, so prefer DEVART_AGENT_KEY or --key-file
  --amqp <url>         broker URL with the agent's own credentials        DEVART_AMQP_URL
                       (the "broker.url" POST /api/agents returned)
  --prefix <p>         queue name prefix, if the API sets AMQP_PREFIX      DEVART_AMQP_PREFIX
                       (the "broker.amqp_prefix" POST /api/agents returned)
  --concurrency <n>    tasks at once (default 1)
  -h, --help           show this help`;

/**
 * The agent's key, from the first source given: `--key`, `--key-file` (or DEVART_AGENT_KEY_FILE),
 * DEVART_AGENT_KEY, DEVART_API_KEY (the Python SDK's variable, so one environment serves both). A file or the environment keeps the key out of argv, which every local user
 * can read; a file's surrounding whitespace (its trailing newline) is not part of the key.
 */
export function agentKey(
  flag: string | undefined,
  file: string | undefined,
  env: CommandContext['env'],
): string | undefined {
  if (flag !== undefined && file !== undefined) throw new UsageError('give --key or --key-file, not both');
  if (flag !== undefined) return flag;
  const path = file ?? (env.DEVART_AGENT_KEY_FILE || undefined);
  if (path === undefined) return env.DEVART_AGENT_KEY || env.DEVART_API_KEY || undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    const source = file === undefined ? 'DEVART_AGENT_KEY_FILE' : '--key-file';
    throw new UsageError(
      `${source}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`,
    );
  }
}

export async function agentCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, {
    capability: { type: 'string' },
    api: { type: 'string' },
    key: { type: 'string' },
    'key-file': { type: 'string' },
    amqp: { type: 'string' },
    prefix: { type: 'string' },
    concurrency: { type: 'string' },
  });
  if (values.help) {
    ctx.out(agentHelp);
    return 0;
  }
  const capabilityList = values.capability ?? ctx.env.DEVART_CAPABILITIES;
  const apiUrl = values.api ?? ctx.env.DEVART_API_URL;
  const apiKey = agentKey(values.key, values['key-file'], ctx.env);
  const amqpUrl = values.amqp ?? ctx.env.DEVART_AMQP_URL;
  if (!capabilityList) throw new UsageError('--capability is required, e.g. --capability echo,shell');
  const capabilities = capabilityList
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const unknown = capabilities.filter((c) => !(builtInCapabilities as readonly string[]).includes(c));
  if (unknown.length > 0) {
    throw new UsageError(
      `--capability: the reference agent has no handler for ${unknown.join(', ')} (it knows echo, shell)`,
    );
  }
  if (!apiUrl || !/^https?:\/\//.test(apiUrl))
    throw new UsageError('--api must be the API URL, e.g. http://127.0.0.1:8787');
  if (!apiKey?.startsWith('dva_')) {
    throw new UsageError(
      'the agent API key (dva_…) from POST /api/agents is required: DEVART_AGENT_KEY, --key-file <path> or --key',
    );
  }
  if (!amqpUrl || !/^amqps?:\/\//.test(amqpUrl)) {
    throw new UsageError(
      '--amqp must be the broker URL POST /api/agents returned (amqp://…). An embedded devart (no AMQP_URL) ' +
        'keeps its broker inside its own process and runs its own demo agents: start it with AMQP_URL to add external agents.',
    );
  }
  const concurrency = values.concurrency === undefined ? 1 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) {
    throw new UsageError(`--concurrency must be a whole number from 1 to 1000 (got "${values.concurrency}")`);
  }

  const format = ctx.env.LOG_FORMAT || undefined;
  if (format !== undefined && format !== 'json' && format !== 'pretty')
    throw new UsageError(`LOG_FORMAT must be json or pretty (got "${format}")`);
  const logger = createLogger({
    level: ctx.env.LOG_LEVEL || 'info',
    format: logFormat(format, process.stdout.isTTY === true),
    service: 'devart-agent',
  });
  const agent = createAgent({
    apiUrl,
    apiKey,
    amqpUrl,
    prefix: values.prefix ?? ctx.env.DEVART_AMQP_PREFIX ?? '',
    capabilities,
    concurrency,
    logger,
  });
  try {
    await agent.startConsuming(referenceCallback());
  } catch (error) {
    // Refused (a wrong prefix, a capability it was not registered with): close the connection too.
    await agent.stop();
    throw error;
  }
  ctx.err(
    `devart agent: consuming ${capabilities.join(', ')} (and tasks without a capability) with concurrency ${concurrency}; Ctrl-C to stop`,
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return resolve(1);
      stopping = true;
      ctx.err(`devart agent: ${signal}: finishing in-flight tasks…`);
      void agent.stop().then(() => {
        ctx.err('devart agent: stopped');
        resolve(0);
      });
    };
    ctx.onSignal('SIGINT', () => stop('SIGINT'));
    ctx.onSignal('SIGTERM', () => stop('SIGTERM'));
  });
}
