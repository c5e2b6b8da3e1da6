import type { ClaimedDelivery, Queryable } from '@devart/db';
import type { DeliveryChannel, SendResult } from './deliveries';
import {
  composeNotification,
  type Notification,
  type NotificationPolicy,
  testNotification,
} from './notifier';

/** TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_API_URL. */
export interface TelegramSettings {
  token: string;
  chatId: string;
  /** The Bot API's base URL, without a trailing slash (https://api.telegram.org). */
  apiUrl: string;
}

const html: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Escapes text for Telegram's HTML parse mode (and for an attribute value). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => html[c]!);
}

/**
 * A notification as Telegram HTML: a bold headline, the subject, one fact a line, the excerpt as
 * preformatted text, the link last. Every piece is escaped, so a task title cannot inject markup.
 * @example renderTelegramHtml({ icon: '🚨', headline: 'Task quarantined', subject: 'lint <src>', facts: [] })
 * // '🚨 <b>Task quarantined</b>\n<b>lint &lt;src&gt;</b>'
 */
export function renderTelegramHtml(n: Notification): string {
  const lines = [`${n.icon} <b>${escapeHtml(n.headline)}</b>`];
  if (n.subject) lines.push(`<b>${escapeHtml(n.subject)}</b>`);
  for (const fact of n.facts) lines.push(escapeHtml(fact));
  if (n.excerpt) lines.push(`<pre>${escapeHtml(n.excerpt)}</pre>`);
  if (n.link) lines.push(`<a href="${escapeHtml(n.link.url)}">${escapeHtml(n.link.label)}</a>`);
  return lines.join('\n');
}

// Telegram's limits: about one message a second in a chat, 20 a minute in a group or channel.
const PRIVATE_CHAT_INTERVAL_MS = 1000;
const GROUP_CHAT_INTERVAL_MS = 3000;

/** The least gap between two messages to `chatId`: groups (negative ids) and @channels get 3 s. */
export function telegramIntervalMs(chatId: string): number {
  return chatId.startsWith('-') || chatId.startsWith('@') ? GROUP_CHAT_INTERVAL_MS : PRIVATE_CHAT_INTERVAL_MS;
}

interface BotApiAnswer {
  ok?: boolean;
  description?: string;
  error_code?: number;
  result?: { message_id?: number };
  parameters?: { retry_after?: number };
}

/**
 * Sends one message with the Bot API's sendMessage and says what came of it, never throwing for
 * Telegram's answer: 429 → retry after `parameters.retry_after` (or Retry-After); 5xx, a network
 * fault, 401/403/404 (a wrong token, a bot removed from the chat: fixable, so kept) → retry with
 * backoff; any other 4xx → failed. The token never appears in what it returns.
 */
export async function sendTelegramMessage(
  settings: TelegramSettings,
  { chatId, text }: { chatId: string; text: string },
  { signal, fetch: fetchImpl = fetch }: { signal?: AbortSignal; fetch?: typeof fetch } = {},
): Promise<SendResult> {
  const hide = (message: string) => message.replaceAll(settings.token, '<TELEGRAM_BOT_TOKEN>');
  let response: Response;
  try {
    response = await fetchImpl(`${settings.apiUrl}/bot${settings.token}/sendMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        chat_id: chatId,
        text,
        parse_mode: 'HTML',
        link_preview_options: { is_disabled: true },
      }),
      signal,
    });
  } catch (error) {
    const err = error as Error & { cause?: { code?: string; message?: string } };
    const why =
      err.name === 'TimeoutError' ? 'timed out' : (err.cause?.code ?? err.cause?.message ?? err.message);
    return { outcome: 'retry', error: hide(`Telegram unreachable (${settings.apiUrl}): ${why}`) };
  }
  const body = (await response.json().catch(() => ({}))) as BotApiAnswer;
  if (response.ok && body.ok !== false) {
    return { outcome: 'sent', result: { message_id: body.result?.message_id ?? null } };
  }
  const status = body.error_code ?? response.status;
  const said = hide(`${status} ${body.description ?? response.statusText}`.trim());
  if (status === 429) {
    const header = Number(response.headers.get('retry-after'));
    const seconds = body.parameters?.retry_after ?? (Number.isFinite(header) && header > 0 ? header : 1);
    return { outcome: 'retry', error: `Telegram: ${said}`, retryAfterMs: seconds * 1000 };
  }
  if (status === 401 || status === 404)
    return { outcome: 'retry', error: `Telegram refused the bot token (${said}): check TELEGRAM_BOT_TOKEN` };
  if (status === 403)
    return { outcome: 'retry', error: `Telegram: ${said}: add the bot to the chat TELEGRAM_CHAT_ID names` };
  if (status >= 500 || status === 408) return { outcome: 'retry', error: `Telegram: ${said}` };
  return { outcome: 'failed', error: `Telegram: ${said}` };
}

/**
 * The Telegram channel of the delivery outbox: events of `policy.events` queue a row for the chat;
 * each is composed (notifier.ts), rendered as HTML and sent, or skipped as the policy says.
 */
export function telegramChannel({
  db,
  settings,
  policy,
  fetch: fetchImpl,
}: {
  db: Queryable;
  settings: TelegramSettings;
  policy: NotificationPolicy;
  fetch?: typeof fetch;
}): DeliveryChannel {
  return {
    name: 'telegram',
    eventTypes: policy.events,
    target: settings.chatId,
    minIntervalMs: telegramIntervalMs,
    async send(delivery: ClaimedDelivery, signal: AbortSignal): Promise<SendResult> {
      const composed = await composeNotification(db, policy, delivery);
      if (composed.outcome === 'skip') return { outcome: 'skipped', reason: composed.reason };
      return sendTelegramMessage(
        settings,
        { chatId: delivery.target || settings.chatId, text: renderTelegramHtml(composed.notification) },
        { signal, fetch: fetchImpl },
      );
    },
  };
}

/**
 * Sends `devart notify test`'s message straight to the Bot API (no database, no delivery outbox),
 * so the bot, the chat and PUBLIC_URL can be checked before the platform runs.
 */
export function sendTelegramTest(
  settings: TelegramSettings,
  { publicUrl, text, fetch: fetchImpl }: { publicUrl?: string; text?: string; fetch?: typeof fetch } = {},
): Promise<SendResult> {
  const notification = testNotification(publicUrl, { text, at: new Date().toISOString() });
  return sendTelegramMessage(
    settings,
    { chatId: settings.chatId, text: renderTelegramHtml(notification) },
    { signal: AbortSignal.timeout(15_000), fetch: fetchImpl },
  );
}
