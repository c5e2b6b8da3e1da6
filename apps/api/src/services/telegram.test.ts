import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeHtml, renderTelegramHtml, sendTelegramMessage, telegramIntervalMs } from './telegram';
import { startTelegramStub, type TelegramStub } from './telegram-stub';

const TOKEN = '987654321:AAH-another-test-token_abcdefghij';

let stub: TelegramStub;
beforeAll(async () => {
  stub = await startTelegramStub({ token: TOKEN });
});
afterAll(() => stub?.close());

const settings = () => ({ token: TOKEN, chatId: '77', apiUrl: stub.url });

describe('Telegram messages', () => {
  it('escape every piece for the HTML parse mode, so a title cannot inject markup or break the link', () => {
    expect(escapeHtml(`<b>&"'`)).toBe(`&lt;b&gt;&amp;&quot;'`);
    expect(
      renderTelegramHtml({
        icon: '🚨',
        headline: 'Task <quarantined>',
        subject: '</b><a href="x">click</a>',
        facts: ['a & b'],
        excerpt: '<pre>nested</pre>',
        link: { label: 'Open', url: 'https://d.example/tasks/1?a=1&b="2"' },
      }),
    ).toBe(
      [
        '🚨 <b>Task &lt;quarantined&gt;</b>',
        '<b>&lt;/b&gt;&lt;a href=&quot;x&quot;&gt;click&lt;/a&gt;</b>',
        'a &amp; b',
        '<pre>&lt;pre&gt;nested&lt;/pre&gt;</pre>',
        '<a href="https://d.example/tasks/1?a=1&amp;b=&quot;2&quot;">Open</a>',
      ].join('\n'),
    );
  });

  it('pace a private chat at 1 s and a group or channel at 3 s (Telegram’s limits)', () => {
    expect([telegramIntervalMs('77'), telegramIntervalMs('-1001234'), telegramIntervalMs('@news')]).toEqual([
      1000, 3000, 3000,
    ]);
  });
});

describe('sendTelegramMessage against a stub Bot API', () => {
  it('sends with sendMessage in HTML mode and returns the message id', async () => {
    const sent = await sendTelegramMessage(settings(), { chatId: '77', text: '<b>hi</b>' });
    expect(sent).toEqual({ outcome: 'sent', result: { message_id: expect.any(Number) } });
    expect(stub.messages.at(-1)).toMatchObject({ chat_id: '77', text: '<b>hi</b>', parse_mode: 'HTML' });
  });

  it('honours 429 parameters.retry_after', async () => {
    stub.throttleNext(1, 7);
    expect(await sendTelegramMessage(settings(), { chatId: '77', text: 'x' })).toEqual({
      outcome: 'retry',
      error: 'Telegram: 429 Too Many Requests: retry after 7',
      retryAfterMs: 7000,
    });
  });

  it('keeps a message refused for its token (retried once the token is fixed), naming the variable and never the token', async () => {
    const wrong = { ...settings(), token: '111:AAwrong-token-wrong-token-wrong' };
    const sent = await sendTelegramMessage(wrong, { chatId: '77', text: 'x' });
    expect(sent.outcome).toBe('retry');
    expect(JSON.stringify(sent)).toContain('check TELEGRAM_BOT_TOKEN');
    expect(JSON.stringify(sent)).not.toContain('wrong-token');
  });

  it('fails for good on a bad request, and retries when the Bot API is unreachable', async () => {
    expect(await sendTelegramMessage(settings(), { chatId: '77', text: '' })).toEqual({
      outcome: 'failed',
      error: 'Telegram: 400 Bad Request: message text is empty',
    });
    const unreachable = await sendTelegramMessage(
      { ...settings(), apiUrl: 'http://127.0.0.1:9' },
      { chatId: '77', text: 'x' },
    );
    expect(unreachable).toMatchObject({
      outcome: 'retry',
      error: expect.stringContaining('Telegram unreachable'),
    });
    expect(JSON.stringify(unreachable)).not.toContain(TOKEN);
  });
});
