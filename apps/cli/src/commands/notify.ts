import { sendTelegramTest } from '@devart/api';
import { parseFlags, UsageError } from '../args';
import { type CommandContext, configFromEnv } from '../context';

export const notifyHelp = `Usage: devart notify test [--text <message>]

Sends one test message to the Telegram chat this environment names (TELEGRAM_BOT_TOKEN,
TELEGRAM_CHAT_ID, TELEGRAM_API_URL; PUBLIC_URL for its link), straight to the Bot API: no
server and no database needed. Run it with the same environment as "devart start" to check the
bot, the chat and the link before relying on them. It says what Telegram answered.

Options:
  --text <message>  the message's first line (default: "Notifications reach this chat.")
  -h, --help        show this help`;

export async function notifyCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseFlags(args, { text: { type: 'string' } }, { positionals: true });
  if (values.help) {
    ctx.out(notifyHelp);
    return 0;
  }
  const [sub, ...extra] = positionals;
  if (sub !== 'test') throw new UsageError(sub ? `unknown subcommand "${sub}" (try "test")` : 'say "test"');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (values.text !== undefined && (values.text.trim() === '' || values.text.length > 500))
    throw new UsageError('--text must hold 1 to 500 characters');
  const config = configFromEnv(ctx.env);
  if (!config.TELEGRAM_BOT_TOKEN || !config.TELEGRAM_CHAT_ID) {
    ctx.err(
      'devart notify: Telegram is not configured: set TELEGRAM_BOT_TOKEN (from @BotFather) and TELEGRAM_CHAT_ID (the chat the bot posts to); see docs/integrations.md',
    );
    return 1;
  }
  const sent = await sendTelegramTest(
    { token: config.TELEGRAM_BOT_TOKEN, chatId: config.TELEGRAM_CHAT_ID, apiUrl: config.TELEGRAM_API_URL },
    { publicUrl: config.PUBLIC_URL, text: values.text },
  );
  switch (sent.outcome) {
    case 'sent':
      ctx.out(
        `sent a test message to chat ${config.TELEGRAM_CHAT_ID} (message ${sent.result?.message_id ?? '?'})`,
      );
      if (!config.PUBLIC_URL)
        ctx.out('note: PUBLIC_URL is unset, so notifications carry no links to the console');
      return 0;
    case 'retry':
      ctx.err(
        `devart notify: not sent: ${sent.error}${sent.retryAfterMs ? `; Telegram asks to wait ${sent.retryAfterMs / 1000} s` : ''}`,
      );
      return 1;
    default:
      ctx.err(`devart notify: not sent: ${sent.outcome === 'failed' ? sent.error : sent.reason}`);
      return 1;
  }
}
