import { openDatabase } from '@devart/api';
import { migrate } from '@devart/db';
import { parseFlags } from '../args';
import { type CommandContext, configFromEnv } from '../context';

export const migrateHelp = `Usage: devart migrate

Applies the migrations the database has not seen yet, each in its own transaction, and reports
what it did. Uses DATABASE_URL when set, else the embedded database in DEVART_DATA_DIR.
Safe to run while another devart migrates the same PostgreSQL database.

Options:
  -h, --help   show this help`;

export async function migrateCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseFlags(args, {});
  if (values.help) {
    ctx.out(migrateHelp);
    return 0;
  }
  const config = configFromEnv(ctx.env);
  const target = config.DATABASE_URL
    ? redact(config.DATABASE_URL)
    : `the embedded database in ${config.DEVART_DATA_DIR}`;
  ctx.err(`devart: migrating ${target}…`);
  const database = await openDatabase(config);
  try {
    const report = await migrate(database.db, { onApplied: (m) => ctx.out(`  applied ${m.name}`) });
    ctx.out(
      report.applied.length > 0
        ? `Applied ${report.applied.length} migration(s); ${report.alreadyApplied.length} were already applied. The database is up to date.`
        : `Nothing to apply: all ${report.alreadyApplied.length} migrations are already applied.`,
    );
    return 0;
  } finally {
    await database.close();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
