import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');
const bin = join(root, 'bin/devart.mjs');
const exec = promisify(execFile);

/** PATH without any directory that holds bwrap: a machine where bubblewrap is not installed. */
const pathWithoutBwrap = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((dir) => dir && !existsSync(join(dir, 'bwrap')))
  .join(delimiter);

function embeddedEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DEVART_DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...extra };
  delete env.DATABASE_URL;
  delete env.AMQP_URL;
  return env;
}

describe('devart start and sandboxes, as a user runs it', () => {
  const dirs: string[] = [];
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('starts without bubblewrap, warns once with the install command, and answers sandbox requests 503 saying the same', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devart-nobwrap-'));
    dirs.push(dataDir);
    const env = embeddedEnv(dataDir, { PATH: pathWithoutBwrap, JWT_SECRET: 'n'.repeat(40) });
    child = spawn(process.execPath, [bin, 'start', '--port', '0', '--agents', '0'], { env, cwd: root });
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URL printed; stdout: ${stdout}`)), 60_000);
      child!.stdout!.on('data', () => {
        const match = /running at (http:\/\/\S+)/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child!.once('exit', (code) => reject(new Error(`devart start exited with ${code}: ${stdout}`)));
    });
    const warnings = stdout.split('\n').filter((line) => line.includes('sandboxes are unavailable'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('apt-get install bubblewrap');

    const token = async (role: string) =>
      (await exec(process.execPath, [bin, 'token', '--role', role], { env, cwd: root })).stdout.trim();
    const json = { 'content-type': 'application/json' };
    const registered = await fetch(`${url}/api/agents`, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${await token('admin')}` },
      body: JSON.stringify({ name: 'no-bwrap', capabilities: ['shell'] }),
    });
    const agent = (await registered.json()) as { id: string; api_key: string };
    const task = (await (
      await fetch(`${url}/api/tasks`, {
        method: 'POST',
        headers: { ...json, authorization: `Bearer ${await token('supervisor')}` },
        body: JSON.stringify({ title: 'needs a sandbox', capability: 'shell' }),
      })
    ).json()) as { id: string };
    const agentAuth = { ...json, authorization: `Bearer ${agent.api_key}` };
    expect(
      (await fetch(`${url}/api/tasks/${task.id}/start`, { method: 'POST', headers: agentAuth, body: '{}' }))
        .status,
    ).toBe(200);
    const res = await fetch(`${url}/api/agents/${agent.id}/request-sandbox`, {
      method: 'POST',
      headers: agentAuth,
      body: JSON.stringify({ task_id: task.id }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await res.json()) as { detail: string }).detail).toContain('apt-get install bubblewrap');
    child.kill('SIGTERM');
    await new Promise((resolve) => child!.once('exit', resolve));
  }, 90_000);

  const kubeconfig = Buffer.from(
    'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://k8s.example:6443"}}]\n' +
      'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
  ).toString('base64');
  it.each([
    [{}, 'KUBE_CONFIG_DATA'],
    [{ KUBE_CONFIG_DATA: kubeconfig, K8S_NAMESPACE: 'devart' }, 'AGENT_CONTAINER_IMAGE'],
    [
      { KUBE_CONFIG_DATA: 'not base64 kubeconfig!', AGENT_CONTAINER_IMAGE: 'busybox:1.36' },
      'KUBE_CONFIG_DATA',
    ],
    [
      {
        KUBE_CONFIG_DATA: kubeconfig,
        K8S_NAMESPACE: 'Not_A_Label',
        AGENT_CONTAINER_IMAGE: 'busybox:1.36',
      },
      'K8S_NAMESPACE',
    ],
  ])(
    'refuses to start with SANDBOX_PROVIDER=kubernetes and a bad cluster setting, naming it (%#)',
    async (extra, variable) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'devart-k8scfg-'));
      dirs.push(dataDir);
      const env = embeddedEnv(dataDir, { SANDBOX_PROVIDER: 'kubernetes', ...extra });
      delete env.KUBERNETES_SERVICE_HOST;
      const failure = await exec(process.execPath, [bin, 'start', '--port', '0'], { env, cwd: root }).then(
        () => undefined,
        (error: { code: number; stderr: string }) => error,
      );
      expect(failure?.code).toBe(1);
      expect(failure?.stderr).toContain(`${variable}:`);
    },
    60_000,
  );
});
