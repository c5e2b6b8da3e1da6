import { parseFlags } from '../args';
import type { CommandContext } from '../context';
import { apiFlags, apiFlagsHelp, connectApi, runApiCommand, table } from '../http-api';

export const agentsHelp = `Usage: devart agents [--all] [--api <url>] [--token <jwt>]

Lists the registered agents through the HTTP API: their status (IDLE, BUSY, OFFLINE),
capabilities and when they were last heard from.

Options:
  --all           include revoked agents
${apiFlagsHelp}
  -h, --help      show this help`;

interface AgentRow {
  id: string;
  name: string;
  capabilities: string[];
  status: string;
  last_heartbeat_at: string | null;
  revoked_at: string | null;
}

export async function agentsCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, { ...apiFlags, all: { type: 'boolean' } });
  if (values.help) {
    ctx.out(agentsHelp);
    return 0;
  }
  return runApiCommand('agents', ctx, async () => {
    const api = connectApi(values, ctx.env);
    const page = await api.get<{ items: AgentRow[] }>(
      `/api/agents${values.all ? '?include_revoked=true' : ''}`,
    );
    if (page.items.length === 0) {
      ctx.out('no agents registered (an admin registers one with POST /api/agents)');
      return 0;
    }
    for (const line of table(
      ['ID', 'NAME', 'STATUS', 'CAPABILITIES', 'LAST SEEN'],
      page.items.map((a) => [
        a.id,
        a.name,
        a.revoked_at ? 'REVOKED' : a.status,
        a.capabilities.join(',') || '-',
        a.last_heartbeat_at?.slice(0, 19).replace('T', ' ') ?? 'never',
      ]),
    ))
      ctx.out(line);
    return 0;
  });
}
