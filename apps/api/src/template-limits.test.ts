import { MAX_TEMPLATE_STRING_LENGTH } from '@devart/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../../test/api';
import { backend } from '../../../test/db';
import { expectProblem } from '../../../test/http';
import { MAX_BODY_BYTES } from './middleware/json-body';

let api: TestApi;
let supervisor: string;
beforeAll(async () => {
  api = await createTestApi();
  supervisor = await api.token('supervisor');
});
afterAll(() => api?.drop());

/**
 * A definition just under the body limit whose payload strings are each at the template cap and
 * full of `{{`: unclosed, nested-looking and valid. The lazy regex this replaced took minutes.
 */
function heavyDefinition(name: string) {
  const chunk = MAX_TEMPLATE_STRING_LENGTH - 2;
  const strings = [
    ...Array.from({ length: 5 }, () => '{{'.repeat(chunk / 2)),
    ...Array.from({ length: 5 }, () => '{{vars.v}}'.repeat(Math.floor(chunk / 10))),
    ...Array.from({ length: 5 }, () => '{{ {{'.repeat(Math.floor(chunk / 5))),
  ];
  return {
    name,
    variables: { v: { type: 'string' } },
    steps: [{ key: 'a', title: 'A', capability: 'echo', payload: { strings } }],
  };
}

async function timed(run: () => Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = performance.now();
  const res = await run();
  return { res, ms: performance.now() - started };
}

describe(`template-bearing strings over HTTP on ${backend}`, () => {
  it('accepts a 1 MiB workflow definition full of {{ quickly', async () => {
    const body = heavyDefinition('heavy-templates');
    const size = Buffer.byteLength(JSON.stringify(body));
    expect(size).toBeGreaterThan(0.9 * MAX_BODY_BYTES);
    expect(size).toBeLessThan(MAX_BODY_BYTES);
    const { res, ms } = await timed(() => api.call('POST', '/api/workflows', { auth: supervisor, body }));
    expect(res.status, await res.clone().text()).toBe(201);
    console.info(`POST /api/workflows, ${size} bytes full of {{: ${ms.toFixed(0)} ms`);
    // Measured well under 100 ms of template work; the loose bound keeps a busy machine from flaking.
    expect(ms).toBeLessThan(1000);
  });

  it('publishes and installs a 1 MiB marketplace manifest full of {{ quickly', async () => {
    const manifest = heavyDefinition('heavy-manifest');
    manifest.steps[0]!.payload.strings.length = 14; // room for the item's own fields
    const body = { item_type: 'workflow', name: 'heavy-manifest', version: '1.0.0', manifest };
    const size = Buffer.byteLength(JSON.stringify(body));
    expect(size).toBeGreaterThan(0.85 * MAX_BODY_BYTES);
    const published = await timed(() => api.call('POST', '/api/marketplace', { auth: supervisor, body }));
    expect(published.res.status, await published.res.clone().text()).toBe(201);
    const { id } = (await published.res.json()) as { id: string };
    const installed = await timed(() =>
      api.call('POST', `/api/marketplace/${id}/install`, { auth: supervisor, body: {} }),
    );
    expect(installed.res.status, await installed.res.clone().text()).toBe(201);
    console.info(
      `marketplace manifest, ${size} bytes full of {{: publish ${published.ms.toFixed(0)} ms, install ${installed.ms.toFixed(0)} ms`,
    );
    expect(published.ms).toBeLessThan(1000);
    expect(installed.ms).toBeLessThan(1000);
  });

  it('refuses a template-bearing string over the cap with 400 naming the field, in a workflow and a manifest', async () => {
    const long = `{{vars.v}}${'x'.repeat(MAX_TEMPLATE_STRING_LENGTH)}`;
    const definition = {
      name: 'too-long',
      variables: { v: { type: 'string' } },
      steps: [{ key: 'a', title: 'A', capability: 'echo', payload: { cmd: ['ok', long] } }],
    };
    const workflow = await expectProblem(
      await api.call('POST', '/api/workflows', { auth: supervisor, body: definition }),
      400,
      'validation',
    );
    expect(workflow.errors).toEqual([
      {
        location: 'body',
        field: 'steps[0].payload.cmd[1]',
        message: `holds a template and is ${long.length} characters long; a string with templates may be at most 65536`,
      },
    ]);
    const manifest = await expectProblem(
      await api.call('POST', '/api/marketplace', {
        auth: supervisor,
        body: { item_type: 'workflow', name: 'too-long', version: '1.0.0', manifest: definition },
      }),
      400,
      'validation',
    );
    expect(manifest.errors).toEqual([expect.objectContaining({ field: 'manifest.steps[0].payload.cmd[1]' })]);
  });
});
