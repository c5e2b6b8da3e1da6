import { Capability, platformEventTypes, TaskStatus } from '@devart/contracts';
import type { PlatformEvent } from '@devart/sdk';
import { parseFlags, UsageError } from '../args';
import type { CommandContext } from '../context';
import { apiFlags, apiFlagsHelp, connectApi, runApiCommand, stopOnSignal, table } from '../http-api';

export const tasksHelp = `Usage: devart tasks [--status <s>] [--capability <c>] [--watch] [--api <url>] [--token <jwt>]

Lists the newest tasks (50), through the HTTP API. With --watch it then prints one line per
change of a task (created, started, done, failed, retried, quarantined…) as it happens, read from
the event stream (GET /api/events), until Ctrl-C.

Options:
  --status <s>      only tasks in this state: ${TaskStatus.options.join(', ')}
  --capability <c>  only tasks of this capability
  --watch           keep printing task changes
${apiFlagsHelp}
  -h, --help        show this help`;

interface TaskRow {
  id: string;
  title: string;
  capability: string | null;
  status: string;
  retry_count: number;
  created_at: string;
  agent_id: string | null;
}

const clock = (iso: string) => iso.slice(11, 19);

/** One line for a task event, e.g. `12:00:01  task.done  <id>  DONE  lint (shell)  812ms`. */
export function taskEventLine(event: PlatformEvent): string {
  const data = (event.data ?? {}) as Record<string, unknown>;
  const parts = [
    clock(event.at),
    event.type.padEnd(20),
    event.task_id ?? '',
    String(data.status ?? ''),
    `${data.title ?? ''}${data.capability ? ` (${data.capability})` : ''}`,
    typeof data.attempt === 'number' ? `attempt ${data.attempt}` : '',
    typeof data.duration_ms === 'number' ? `${data.duration_ms}ms` : '',
    typeof data.error === 'string' ? `error: ${data.error.split('\n')[0]!.slice(0, 120)}` : '',
  ];
  return parts.filter(Boolean).join('  ');
}

export async function tasksCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, {
    ...apiFlags,
    status: { type: 'string' },
    capability: { type: 'string' },
    watch: { type: 'boolean' },
  });
  if (values.help) {
    ctx.out(tasksHelp);
    return 0;
  }
  if (values.status !== undefined && !TaskStatus.safeParse(values.status).success)
    throw new UsageError(`--status must be one of ${TaskStatus.options.join(', ')} (got "${values.status}")`);
  if (values.capability !== undefined && !Capability.safeParse(values.capability).success)
    throw new UsageError(`--capability must be a capability name such as shell (got "${values.capability}")`);
  return runApiCommand('tasks', ctx, async () => {
    const api = connectApi(values, ctx.env);
    const query = new URLSearchParams({ limit: '50' });
    if (values.status) query.set('status', values.status);
    if (values.capability) query.set('capability', values.capability);
    const page = await api.get<{ items: TaskRow[] }>(`/api/tasks?${query}`);
    if (page.items.length === 0) ctx.out('no tasks');
    else
      for (const line of table(
        ['ID', 'STATUS', 'CAPABILITY', 'RETRIES', 'CREATED', 'TITLE'],
        page.items.map((t) => [
          t.id,
          t.status,
          t.capability ?? '-',
          String(t.retry_count),
          t.created_at.slice(0, 19).replace('T', ' '),
          t.title,
        ]),
      ))
        ctx.out(line);
    if (!values.watch) return 0;
    ctx.out('watching task changes (Ctrl-C to stop)…');
    const signal = stopOnSignal(ctx);
    const types = platformEventTypes.filter((t) => t.startsWith('task.'));
    for await (const event of api.events({ types, signal })) {
      const data = (event.data ?? {}) as { status?: string; capability?: string };
      if (values.status && data.status !== values.status) continue;
      if (values.capability && data.capability !== values.capability) continue;
      ctx.out(taskEventLine(event));
    }
    return 0;
  });
}
