import { describe, expect, it } from 'vitest';
import { ApiError } from '../../lib/api';
import { emptyFields, errorsOfProblem, manifestTemplates, nextPatch, readPublishForm } from './publish-form';

const fields = {
  ...emptyFields,
  name: '@acme/ci-pipeline',
  tags: 'CI, testing',
  description: ' Lint and test. ',
};

describe('readPublishForm', () => {
  it('builds the body POST /api/marketplace takes, from a valid form', () => {
    const read = readPublishForm({ ...fields, repository_url: 'https://github.com/acme/ci' });
    expect(read.ok).toBe(true);
    expect((read as { body: unknown }).body).toEqual({
      item_type: 'workflow',
      name: '@acme/ci-pipeline',
      version: '1.0.0',
      description: 'Lint and test.',
      tags: ['ci', 'testing'],
      repository_url: 'https://github.com/acme/ci',
      manifest: JSON.parse(manifestTemplates.workflow),
    });
    expect(readPublishForm({ ...fields, item_type: 'agent', manifest: manifestTemplates.agent }).ok).toBe(
      true,
    );
  });

  it('names each bad field as the contract does', () => {
    const read = readPublishForm({
      ...fields,
      name: 'Not A Slug',
      version: 'v1',
      tags: 'ok, bad/tag',
      repository_url: 'http://user:pw@example.com',
      manifest: '[]',
    });
    expect(read.ok).toBe(false);
    const { errors } = read as { errors: Record<string, string> };
    expect(Object.keys(errors).sort()).toEqual(['manifest', 'name', 'repository_url', 'tags', 'version']);
    expect(errors.name).toMatch(/lowercase slug/);
    expect(errors.version).toMatch(/semantic version/);
    expect(errors.tags).toBe('not a tag: bad/tag');
    expect(errors.repository_url).toMatch(/https:\/\//);
    expect(errors.manifest).toMatch(/not an array/);
  });

  it('checks a workflow manifest the way POST /api/workflows does: a cycle, an unknown dependency', () => {
    const cyclic = {
      name: 'loop',
      steps: [
        { key: 'a', title: 'A', depends_on: ['b'] },
        { key: 'b', title: 'B', depends_on: ['a'] },
      ],
    };
    const read = readPublishForm({ ...fields, manifest: JSON.stringify(cyclic) });
    expect((read as { errors: Record<string, string> }).errors.manifest).toMatch(/cycle/);
    const noSteps = readPublishForm({ ...fields, manifest: '{"name": "x", "steps": []}' });
    expect((noSteps as { errors: Record<string, string> }).errors.manifest).toMatch(/^steps: /);
  });

  it('checks an agent manifest as an AgentManifest', () => {
    const read = readPublishForm({ ...fields, item_type: 'agent', manifest: '{"capabilities": []}' });
    expect((read as { errors: Record<string, string> }).errors.manifest).toMatch(/^capabilities: /);
    const blank = readPublishForm({ ...fields, item_type: 'agent', manifest: '  ' });
    expect((blank as { errors: Record<string, string> }).errors.manifest).toBe('is required: a JSON object');
  });
});

describe('nextPatch', () => {
  it('bumps the patch, or releases a pre-release, as semver inc patch does', () => {
    expect(nextPatch('1.2.3')).toBe('1.2.4');
    expect(nextPatch('1.3.0-rc.1')).toBe('1.3.0');
    expect(nextPatch('2.0.9+build.5')).toBe('2.0.10');
    expect(nextPatch('weird')).toBe('weird');
  });
});

describe('errorsOfProblem', () => {
  it('puts the API’s field errors under the form’s fields', () => {
    const error = new ApiError(400, {
      type: 'urn:devart:problem:validation',
      title: 'Invalid request',
      status: 400,
      errors: [
        { location: 'body', field: 'manifest.steps[0].key', message: 'duplicate step key' },
        { location: 'body', field: 'tags[1]', message: 'must be lowercase' },
        { location: 'body', field: 'somewhere', message: 'ignored' },
      ],
    });
    expect(errorsOfProblem(error)).toEqual({
      manifest: 'steps[0].key: duplicate step key',
      tags: 'must be lowercase',
    });
    expect(errorsOfProblem(new Error('x'))).toEqual({});
  });
});
