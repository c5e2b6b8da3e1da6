import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTelegramStub, type TelegramStub } from '../../api/src/services/telegram-stub';
import { runCli } from './main';

const TOKEN = '55555:AAF-cli-test-token-0123456789abcdef';
let stub: TelegramStub;
beforeAll(async () => {
  stub = await startTelegramStub({ token: TOKEN });
});
afterAll(() => stub?.close());

async function run(argv: string[], env: Record<string, string | undefined>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    onSignal: () => {},
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('devart notify test', () => {
  const env = () => ({
    TELEGRAM_BOT_TOKEN: TOKEN,
    TELEGRAM_CHAT_ID: '-100777',
    TELEGRAM_API_URL: stub.url,
    PUBLIC_URL: 'https://devart.example',
  });

  it('sends one test message to the configured chat, straight to the Bot API, and says so', async () => {
    const { code, stdout, stderr } = await run(['notify', 'test', '--text', 'Hello <team>'], env());
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toMatch(/^sent a test message to chat -100777 \(message \d+\)$/);
    expect(stub.messages.at(-1)).toMatchObject({ chat_id: '-100777', parse_mode: 'HTML' });
    expect(stub.messages.at(-1)!.text).toMatch(
      /^✅ <b>devart test message<\/b>\nHello &lt;team&gt;\nSent .* UTC\n<a href="https:\/\/devart.example">Open devart<\/a>$/,
    );
  });

  it('says what Telegram answered when it refuses, without printing the token', async () => {
    const wrong = await run(['notify', 'test'], {
      ...env(),
      TELEGRAM_BOT_TOKEN: '55555:AAF-wrong-token-0123456789abcdef',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('check TELEGRAM_BOT_TOKEN');
    expect(wrong.stderr).not.toContain('wrong-token');
    stub.throttleNext(1, 3);
    const throttled = await run(['notify', 'test'], env());
    expect(throttled.stderr).toContain('Telegram asks to wait 3 s');
  });

  it('explains what to set when Telegram is not configured, and refuses a wrong call', async () => {
    const bare = await run(['notify', 'test'], {});
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('set TELEGRAM_BOT_TOKEN');
    expect((await run(['notify', 'send'], env())).code).toBe(2);
    expect((await run(['notify', 'test'], { TELEGRAM_BOT_TOKEN: TOKEN })).stderr).toContain(
      'TELEGRAM_CHAT_ID: must be set with TELEGRAM_BOT_TOKEN',
    );
  });
});
