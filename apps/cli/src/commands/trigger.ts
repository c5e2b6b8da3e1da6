import { parseFlags, UsageError } from '../args';
import type { CommandContext } from '../context';
import { apiFlags, apiFlagsHelp, connectApi, findWorkflow, runApiCommand, stopOnSignal } from '../http-api';
import { followRun, RunProgress } from '../run-progress';

export const triggerHelp = `Usage: devart trigger <workflow name or id> [--var <name=value> ...] [--watch] [--api <url>] [--token <jwt>]

Starts a run of the workflow through the HTTP API (a supervisor token) and prints its id, so it
composes: RUN=$(devart trigger ci-pipeline). With --watch it then follows the run to its end
(a line per step, updated in place on a terminal) and exits 0 when it COMPLETED, 1 when it
FAILED or was CANCELLED.

Options:
  --var <name=value>  a variable of the run; repeat for more. Numbers, booleans, objects and
                      arrays are read as JSON when the workflow declares that type
  --watch             follow the run until it ends
${apiFlagsHelp}
  -h, --help          show this help`;

/**
 * `--var` values as the workflow's declared variables want them: text for a string (or an
 * undeclared name, which the API refuses with its own message), JSON for the other types.
 * @example
 * parseVars(['branch=main', 'retries=3'], { retries: { type: 'number' } }); // { branch: 'main', retries: 3 }
 */
export function parseVars(
  pairs: string[],
  declared: Record<string, { type: string }> = {},
): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--var must be name=value (got "${pair}")`);
    const name = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    const type = declared[name]?.type ?? 'string';
    if (type === 'string') vars[name] = text;
    else {
      try {
        vars[name] = JSON.parse(text);
      } catch {
        throw new UsageError(
          `--var ${name}: the workflow declares a ${type}, give it as JSON (got "${text}")`,
        );
      }
    }
  }
  return vars;
}

export async function triggerCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...apiFlags, var: { type: 'string', multiple: true }, watch: { type: 'boolean' } },
    { positionals: true },
  );
  if (values.help) {
    ctx.out(triggerHelp);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (name === undefined) throw new UsageError('name the workflow: devart trigger <workflow name or id>');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  for (const pair of values.var ?? []) parseVars([pair]);
  return runApiCommand('trigger', ctx, async () => {
    const api = connectApi(values, ctx.env);
    const workflow = await findWorkflow(api, name);
    const definition = (workflow.definition ?? {}) as { variables?: Record<string, { type: string }> };
    const variables = parseVars(values.var ?? [], definition.variables);
    const triggered = await api.post<{ run_id: string }>(`/api/workflows/${workflow.id}/trigger`, {
      variables,
    });
    ctx.out(triggered.run_id);
    if (!values.watch) return 0;
    const progress = new RunProgress(ctx.out, process.stdout.isTTY === true, workflow.name);
    const run = await followRun(api, triggered.run_id, progress, stopOnSignal(ctx));
    if (run.status === 'RUNNING') return 130;
    return run.status === 'COMPLETED' ? 0 : 1;
  });
}
