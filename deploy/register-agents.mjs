// Registers the reference agents of deploy/compose.yaml, once: the init step `register-agents`.
//
//   node deploy/register-agents.mjs <dir> <name>=<capability,…> …
//
// For each name it writes <dir>/<name>.key (the agent's API key) and <dir>/<name>.amqp (the broker
// URL with the agent's own user), mode 0600. A name whose key still works (GET /api/agents/me) is
// left as it is, so `docker compose up` again registers nobody twice. The admin token comes from
// `devart token --role admin` with the API's JWT_SECRET; it is used here and printed nowhere.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const api = (process.env.DEVART_API_URL ?? 'http://api:8787').replace(/\/+$/, '');
const [dir, ...specs] = process.argv.slice(2);
if (!dir || specs.length === 0 || specs.some((s) => !/^[a-z0-9][a-z0-9._-]*=[a-z0-9,._-]+$/.test(s))) {
  console.error('usage: node deploy/register-agents.mjs <dir> <name>=<capability,…> …');
  process.exit(2);
}
// The agents run as the image's user (1000); this step may run as root to write the volume.
const owner = { uid: 1000, gid: 1000 };

async function ready() {
  for (let attempt = 1; ; attempt++) {
    try {
      if ((await fetch(`${api}/ready`)).ok) return;
    } catch {}
    if (attempt === 60) throw new Error(`${api}/ready did not answer 200 within a minute`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function stillValid(keyFile) {
  if (!existsSync(keyFile)) return false;
  const key = readFileSync(keyFile, 'utf8').trim();
  const res = await fetch(`${api}/api/agents/me`, { headers: { authorization: `Bearer ${key}` } });
  return res.ok;
}

function writeSecret(path, value) {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  if (process.getuid?.() === 0) chownSync(path, owner.uid, owner.gid);
}

await ready();
mkdirSync(dir, { recursive: true });
if (process.getuid?.() === 0) chownSync(dir, owner.uid, owner.gid);
const token = execFileSync(process.execPath, ['bin/devart.mjs', 'token', '--role', 'admin', '--ttl', '15m'], {
  encoding: 'utf8',
}).trim();
for (const spec of specs) {
  const [name, list] = spec.split('=');
  const keyFile = join(dir, `${name}.key`);
  if (await stillValid(keyFile)) {
    console.log(`${name}: already registered`);
    continue;
  }
  const res = await fetch(`${api}/api/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, capabilities: list.split(',') }),
  });
  if (res.status !== 201) {
    console.error(`${name}: POST /api/agents answered ${res.status}: ${await res.text()}`);
    process.exit(1);
  }
  const agent = await res.json();
  if (!agent.broker) {
    console.error(`${name}: the API runs without AMQP_URL, so there is no broker user to hand the agent`);
    process.exit(1);
  }
  writeSecret(keyFile, agent.api_key);
  writeSecret(join(dir, `${name}.amqp`), agent.broker.url);
  console.log(`${name}: registered as ${agent.id} (${list})`);
}
