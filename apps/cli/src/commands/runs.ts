import { parseFlags, UsageError } from '../args';
import type { CommandContext } from '../context';
import {
  apiFlags,
  apiFlagsHelp,
  connectApi,
  findWorkflow,
  formatDuration,
  runApiCommand,
  stopOnSignal,
  table,
} from '../http-api';
import { type RunDetail, RunProgress } from '../run-progress';

export const runsHelp = `Usage: devart runs <workflow name or id> [--watch] [--api <url>] [--token <jwt>]

Lists a workflow's newest runs (20), through the HTTP API. With --watch it shows the runs still
going and every new run of the workflow as they progress, a line per step, until Ctrl-C: on a
terminal the lines update in place; piped, it prints a line per change. It follows the event
stream (GET /api/events), it does not poll.

Options:
  --watch         follow the workflow's runs live
${apiFlagsHelp}
  -h, --help      show this help`;

interface RunRow {
  id: string;
  status: string;
  start_time: string;
  duration_ms: number | null;
  total_cost: string | null;
}

export async function runsCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...apiFlags, watch: { type: 'boolean' } },
    { positionals: true },
  );
  if (values.help) {
    ctx.out(runsHelp);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) throw new UsageError('name the workflow: devart runs <workflow name or id>');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  return runApiCommand('runs', ctx, async () => {
    const api = connectApi(values, ctx.env);
    const workflow = await findWorkflow(api, name);
    const page = await api.get<{ items: RunRow[] }>(`/api/workflows/${workflow.id}/runs?limit=20`);
    if (!values.watch) {
      if (page.items.length === 0) ctx.out(`workflow ${workflow.name} has no runs yet`);
      else
        for (const line of table(
          ['RUN', 'STATUS', 'STARTED', 'DURATION', 'COST'],
          page.items.map((r) => [
            r.id,
            r.status,
            r.start_time.slice(0, 19).replace('T', ' '),
            formatDuration(r.duration_ms) || '-',
            r.total_cost ?? '-',
          ]),
        ))
          ctx.out(line);
      return 0;
    }
    const signal = stopOnSignal(ctx);
    const progress = new RunProgress(ctx.out, process.stdout.isTTY === true, workflow.name);
    const following = new Set<string>();
    const show = async (runId: string) => {
      const run = await api.get<RunDetail>(`/api/workflow-runs/${runId}`);
      if (progress.update(run)) following.delete(runId);
      else following.add(runId);
    };
    for (const run of page.items.filter((r) => r.status === 'RUNNING')) await show(run.id);
    ctx.out(`watching runs of ${workflow.name} (Ctrl-C to stop)…`);
    for await (const event of api.events({ signal })) {
      const runId = event.workflow_run_id;
      if (!runId) continue;
      const started =
        event.type === 'workflow_run.started' &&
        (event.data as { workflow_id?: string } | undefined)?.workflow_id === workflow.id;
      if (started || following.has(runId)) await show(runId);
    }
    return 0;
  });
}
