import {
  managementUrlFor,
  registerDemoAgents,
  seedDemoWorkflow,
  signUserToken,
  startPlatform,
} from '@devart/api';
import { type Agent, createAgent } from '@devart/sdk';
import { parseFlags, UsageError } from '../args';
import { type CommandContext, configFromEnv } from '../context';
import { createLogger, logFormat } from '../logger';
import { managementApiProblem } from '../management-check';
import { referenceCallback } from '../reference-agent';

/** The demo agents' capabilities; `shell` runs in a sandbox the API provisions, never on the host. */
const demoCapabilities = ['echo', 'shell'];

export const startHelp = `Usage: devart start [--port <n>] [--host <addr>] [--agents <n>] [--no-demo]

Applies pending migrations, then serves the API (and its docs at /api/docs).
Runs on the embedded database in DEVART_DATA_DIR (default .devart/) unless DATABASE_URL is set.
Prints the URL; stops cleanly on Ctrl-C (SIGINT) or SIGTERM. On the embedded database and an
interactive terminal it also prints an admin login link (a 12-hour admin token); otherwise, so no
token reaches a log, it says to mint one with "devart token --role admin" (JWT_SECRET or the data
directory's secret). DEVART_PRINT_LOGIN_LINK=1 prints the link on the embedded database even when
stdout is not a terminal (a development aid for scripts and tests that read it); =0 never prints it.

Options:
  --port <n>      port to listen on (default: PORT or 8787; 0 picks a free one)
  --host <addr>   interface to listen on (default: HOST or 127.0.0.1)
  --agents <n>    demo agents to run in this process (default: 2 on the embedded broker, 0 with
                  AMQP_URL, where agents run as "devart agent" processes), with the echo and shell
                  capabilities: shell tasks run in a sandbox the API provisions (bubblewrap, no network)
  --no-demo       do not define the demo workflow "ci-pipeline" (defined otherwise, in every mode,
                  once: an existing workflow of that name is left alone)
  -h, --help      show this help`;

/**
 * Whether `devart start` prints its admin login link. The link carries a 12-hour admin token, so it
 * appears only where nobody but the person at the terminal reads it: the embedded database (a
 * developer's machine) and stdout a terminal, not a file or a log collector.
 * `DEVART_PRINT_LOGIN_LINK=1` lifts the terminal condition (scripts and tests that read the link);
 * `0` never prints it. With DATABASE_URL it is never printed: that is a deployment, with logs.
 * @example
 * loginLinkPolicy({ embedded: true, interactive: false, optIn: undefined });
 * // { reason: 'the admin login link is printed only on an interactive terminal' }
 */
export function loginLinkPolicy({
  embedded,
  interactive,
  optIn,
}: {
  embedded: boolean;
  interactive: boolean;
  optIn: string | undefined;
}): 'print' | { reason: string } {
  if (!embedded)
    return { reason: 'no login link is printed with DATABASE_URL, so no token reaches the logs' };
  if (optIn === '0') return { reason: 'DEVART_PRINT_LOGIN_LINK=0' };
  if (interactive || optIn === '1') return 'print';
  return {
    reason:
      'the admin login link is printed only on an interactive terminal (or with DEVART_PRINT_LOGIN_LINK=1)',
  };
}

export async function start(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, {
    port: { type: 'string' },
    host: { type: 'string' },
    agents: { type: 'string' },
    'no-demo': { type: 'boolean' },
  });
  if (values.help) {
    ctx.out(startHelp);
    return 0;
  }
  if (values.port !== undefined && !/^\d+$/.test(values.port)) {
    throw new UsageError(`--port must be a number from 0 to 65535 (got "${values.port}")`);
  }
  if (values.agents !== undefined && !/^\d+$/.test(values.agents)) {
    throw new UsageError(`--agents must be a whole number (got "${values.agents}")`);
  }
  const config = configFromEnv(ctx.env, { PORT: values.port, HOST: values.host });
  const demoCount = values.agents === undefined ? (config.AMQP_URL ? 0 : 2) : Number(values.agents);
  const logger = createLogger({
    level: config.LOG_LEVEL,
    format: logFormat(config.LOG_FORMAT, process.stdout.isTTY === true),
    service: 'devart-api',
  });
  ctx.err(
    `devart: starting on ${config.DATABASE_URL ? 'PostgreSQL' : `the embedded database in ${config.DEVART_DATA_DIR}`}…`,
  );
  if (config.AMQP_URL) {
    // Without the management API no agent can register (each gets a broker user through it):
    // say so now, naming the variable and the plugin, rather than answer POST /api/agents 503.
    const problem = await managementApiProblem(
      managementUrlFor(config)!,
      config.RABBITMQ_MANAGEMENT_URL ? 'RABBITMQ_MANAGEMENT_URL' : 'derived from AMQP_URL',
    );
    if (problem) {
      ctx.err(`devart: ${problem}`);
      return 1;
    }
  }
  const platform = await startPlatform(config, logger);
  // A last line of defence, not a fix: a rejection nobody handled is a bug, but it should reach the
  // log as a line operators' tooling reads rather than end the API for every client with a raw stack.
  const onUnhandledRejection = (reason: unknown) =>
    logger.error({ err: reason }, 'unhandled promise rejection; this is a bug, please report it');
  process.on('unhandledRejection', onUnhandledRejection);
  const demoAgents: Agent[] = [];
  // The transition lines already tell what the demo agents did; their own lines only at debug.
  const agentLogger = logger.isLevelEnabled('debug')
    ? logger
    : logger.child({ component: 'demo-agent' }, { level: 'warn' });
  try {
    for (const { apiKey } of await registerDemoAgents(platform.db, {
      count: demoCount,
      capabilities: demoCapabilities,
    })) {
      const agent = createAgent({
        apiUrl: platform.url,
        apiKey,
        broker: platform.broker,
        capabilities: demoCapabilities,
        concurrency: 4,
        logger: agentLogger,
        shutdownGraceMs: 5000,
      });
      await agent.startConsuming(referenceCallback());
      demoAgents.push(agent);
    }
    if (!values['no-demo']) await seedDemoWorkflow(platform.db);
  } catch (error) {
    process.off('unhandledRejection', onUnhandledRejection);
    await platform.close();
    throw error;
  }

  ctx.out(`devart is running at ${platform.url}`);
  ctx.out(`  API docs:     ${platform.url}/api/docs`);
  ctx.out(
    `  Broker:       ${config.AMQP_URL ? 'RabbitMQ' : 'in-process'}; demo agents (${demoCapabilities.join(', ')}): ${demoAgents.length}`,
  );
  const sandboxes = platform.sandboxes;
  ctx.out(
    `  Sandboxes:    ${
      'unavailable' in sandboxes
        ? `none, so shell tasks fail: ${sandboxes.unavailable}`
        : sandboxes.provider === 'local'
          ? 'local (bubblewrap, no network)'
          : sandboxes.provider
    }`,
  );
  const login = loginLinkPolicy({
    embedded: !config.DATABASE_URL,
    interactive: process.stdout.isTTY === true,
    optIn: ctx.env.DEVART_PRINT_LOGIN_LINK,
  });
  if (platform.secret && login === 'print') {
    const token = await signUserToken(platform.secret, { role: 'admin', ttlSeconds: 12 * 3600 });
    ctx.out(`  Admin login:  ${platform.url}/#token=${token}`);
    ctx.out('  (valid 12h; mint more with: npx devart token --role admin)');
  } else if (platform.secret && login !== 'print') {
    const secretFrom = config.JWT_SECRET
      ? 'with the same JWT_SECRET'
      : `where it can read ${config.DEVART_DATA_DIR}/jwt-secret`;
    ctx.out(`  Sign in:      with a token from: npx devart token --role admin (run ${secretFrom})`);
    ctx.out(`  (${login.reason})`);
  }
  ctx.out('Press Ctrl-C to stop.');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) {
        ctx.err(`devart: ${signal} again, exiting at once`);
        resolve(1);
        return;
      }
      stopping = true;
      ctx.err(`devart: ${signal} received, shutting down…`);
      await Promise.all(demoAgents.map((a) => a.stop()));
      await platform.close();
      process.off('unhandledRejection', onUnhandledRejection);
      ctx.err('devart: stopped');
      resolve(0);
    };
    ctx.onSignal('SIGINT', () => void stop('SIGINT'));
    ctx.onSignal('SIGTERM', () => void stop('SIGTERM'));
  });
}
