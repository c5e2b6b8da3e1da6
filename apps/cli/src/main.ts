import { ConfigError } from '@devart/api';
import { UsageError } from './args';
import { agentCommand } from './commands/agent';
import { agentsCommand } from './commands/agents';
import { migrateCommand } from './commands/migrate';
import { notifyCommand } from './commands/notify';
import { runsCommand } from './commands/runs';
import { start } from './commands/start';
import { tasksCommand } from './commands/tasks';
import { token } from './commands/token';
import { triggerCommand } from './commands/trigger';
import type { CommandContext } from './context';

export const mainHelp = `Usage: devart <command> [options]

devart — orchestration platform for AI DevOps agents.

Commands:
  start     apply migrations, then serve the API (default port 8787)
  migrate   apply pending database migrations and report them
  token     print a signed user JWT (viewer, supervisor or admin)
  agent     run the reference agent (echo, shell) against a devart API and RabbitMQ
  notify    send a test notification (notify test) with this environment's Telegram settings
  tasks     list tasks (--status, --capability), --watch to follow their changes
  runs      list a workflow's runs, --watch to follow them step by step
  trigger   start a run of a workflow (--var k=v), --watch to follow it to its end
  agents    list the registered agents

Run "devart <command> --help" for a command's options. tasks, runs, trigger and agents talk to a
running API (--api, default http://127.0.0.1:8787) with a token from DEVART_TOKEN or --token.
Configuration comes from environment variables; see the README's configuration table.`;

const commands: Record<string, (args: string[], ctx: CommandContext) => Promise<number>> = {
  start,
  migrate: migrateCommand,
  token,
  agent: agentCommand,
  notify: notifyCommand,
  tasks: tasksCommand,
  runs: runsCommand,
  trigger: triggerCommand,
  agents: agentsCommand,
};

/** Runs the CLI and returns its exit code: 0 done, 1 failed, 2 called wrongly. */
export async function runCli(argv: string[], ctx: CommandContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    ctx.err(mainHelp);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    ctx.out(mainHelp);
    return 0;
  }
  const command = commands[name];
  if (!command) {
    ctx.err(`devart: unknown command "${name}"\n\n${mainHelp}`);
    return 2;
  }
  try {
    return await command(rest, ctx);
  } catch (error) {
    if (error instanceof UsageError) {
      ctx.err(`devart ${name}: ${error.message}\nRun "devart ${name} --help" for usage.`);
      return 2;
    }
    if (error instanceof ConfigError) {
      ctx.err(`devart ${name}: ${error.message}`);
      return 1;
    }
    const err = error as Error;
    ctx.err(`devart ${name}: ${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`);
    return 1;
  }
}

/** The process entry point (bin/devart.mjs). */
export async function main(): Promise<void> {
  const code = await runCli(process.argv.slice(2), {
    env: process.env,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    onSignal: (signal, handler) => process.on(signal, handler),
  });
  process.exitCode = code;
  // Open handles (pools, timers) must not keep a finished command alive.
  if (!['start', 'agent'].includes(process.argv[2] ?? '') || code !== 0)
    setTimeout(() => process.exit(code), 50).unref();
  else process.exit(code);
}
