import type { WorkflowVariable } from '@devart/contracts';
import { configure, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { json, mockApi, problem, renderSignedIn } from '../../test-utils';
import { fieldOfPath, initialValues, readTriggerForm, TriggerForm, variableFields } from './trigger-form';

// The first render in a file loads the app's modules; on a busy CI machine that can outlast the default 1 s.
configure({ asyncUtilTimeout: 5000 });

afterEach(() => vi.unstubAllGlobals());

const declared: Record<string, WorkflowVariable> = {
  branch: { type: 'string', default: 'main', description: 'The branch to build' },
  ticket: { type: 'string', required: true },
  shards: { type: 'number', default: 4 },
  dry_run: { type: 'boolean' },
  env: { type: 'object', default: { CI: '1' } },
  targets: { type: 'array', required: true, default: ['linux'] },
};

describe('variableFields', () => {
  it('makes one field per declared variable, in order, with its control, default and whether it must be given', () => {
    expect(variableFields(declared)).toEqual([
      {
        name: 'branch',
        type: 'string',
        mustGive: false,
        defaultText: 'main',
        description: 'The branch to build',
        control: 'text',
      },
      { name: 'ticket', type: 'string', mustGive: true, control: 'text' },
      { name: 'shards', type: 'number', mustGive: false, defaultText: '4', control: 'number' },
      { name: 'dry_run', type: 'boolean', mustGive: false, control: 'boolean' },
      { name: 'env', type: 'object', mustGive: false, defaultText: '{\n  "CI": "1"\n}', control: 'json' },
      // Required with a default: the default satisfies it.
      { name: 'targets', type: 'array', mustGive: false, defaultText: '[\n  "linux"\n]', control: 'json' },
    ]);
    expect(variableFields(undefined)).toEqual([]);
  });

  it('starts the form with the defaults, blank where there is none', () => {
    expect(initialValues(variableFields(declared))).toMatchObject({
      branch: 'main',
      ticket: '',
      shards: '4',
      dry_run: '',
    });
  });
});

describe('readTriggerForm', () => {
  const fields = variableFields(declared);
  const values = { ...initialValues(fields), ticket: 'OPS-1' };

  it('parses each value by its declared type', () => {
    expect(
      readTriggerForm(fields, { ...values, shards: ' 8 ', dry_run: 'true', env: '{"A": 2}' }, declared),
    ).toEqual({
      ok: true,
      variables: {
        branch: 'main',
        ticket: 'OPS-1',
        shards: 8,
        dry_run: true,
        env: { A: 2 },
        targets: ['linux'],
      },
    });
  });

  it('leaves a blank field out, so its default applies', () => {
    const read = readTriggerForm(
      fields,
      { ...values, branch: '  ', shards: '', env: '', targets: '' },
      declared,
    );
    expect(read).toEqual({ ok: true, variables: { ticket: 'OPS-1' } });
  });

  it('names each field that is missing, unparsable or of the wrong type, as the API would', () => {
    const read = readTriggerForm(
      fields,
      { ...values, ticket: '', shards: 'four', env: '[1]', targets: '{oops' },
      declared,
    );
    expect(read.ok).toBe(false);
    const { errors } = read as { errors: Record<string, string> };
    expect(errors).toEqual({
      ticket: 'variable "ticket" (string) is required',
      shards: 'must be a number',
      env: 'variable "env" must be an object, got array',
      targets: expect.stringMatching(/^not valid JSON/),
    });
  });

  it('reads the field of an API error path', () => {
    expect(fieldOfPath('variables.branch')).toBe('branch');
    expect(fieldOfPath('variables["odd name"]')).toBe('odd name');
    expect(fieldOfPath('steps[0]')).toBeUndefined();
  });
});

describe('TriggerForm', () => {
  const workflowId = '4ef3f7b2-b276-45fb-821d-4cd1bf61ce23';

  function triggerApi(answer: (body: unknown) => Response) {
    const bodies: unknown[] = [];
    mockApi('supervisor', async (url, init) => {
      if (url.pathname === `/api/workflows/${workflowId}/trigger` && init?.method === 'POST') {
        const body = JSON.parse(String(init.body));
        bodies.push(body);
        return answer(body);
      }
      return undefined;
    });
    return bodies;
  }

  it('sends the variables and hands over the new run', async () => {
    const bodies = triggerApi(() =>
      json({ run_id: '1f24f5fb-e598-4e3b-9530-8a6d1daae168', status: 'RUNNING' }, 201),
    );
    const onTriggered = vi.fn();
    renderSignedIn(
      <TriggerForm
        workflowId={workflowId}
        variables={{ branch: declared.branch! }}
        onTriggered={onTriggered}
      />,
    );
    const branch = await screen.findByLabelText('branch');
    expect((branch as HTMLInputElement).value).toBe('main');
    expect(branch.getAttribute('aria-describedby')).toBeTruthy();
    await userEvent.clear(branch);
    await userEvent.type(branch, 'release/1.2');
    await userEvent.click(screen.getByRole('button', { name: 'Trigger run' }));
    await waitFor(() => expect(onTriggered).toHaveBeenCalledWith('1f24f5fb-e598-4e3b-9530-8a6d1daae168'));
    expect(bodies).toEqual([{ variables: { branch: 'release/1.2' } }]);
  });

  it('refuses a required variable left blank before asking the API', async () => {
    const bodies = triggerApi(() => json({}, 201));
    renderSignedIn(
      <TriggerForm workflowId={workflowId} variables={{ ticket: declared.ticket! }} onTriggered={vi.fn()} />,
    );
    await userEvent.click(await screen.findByRole('button', { name: 'Trigger run' }));
    expect((await screen.findByRole('alert')).textContent).toBe('variable "ticket" (string) is required');
    expect(screen.getByLabelText(/ticket/).getAttribute('aria-invalid')).toBe('true');
    expect(bodies).toEqual([]);
  });

  it('shows a refusal of the API by its problem, and its field errors beside the fields', async () => {
    triggerApi(
      () =>
        new Response(
          JSON.stringify({
            type: 'urn:devart:problem:validation',
            title: 'Invalid request',
            status: 400,
            detail: 'variables.branch: not allowed here',
            errors: [{ location: 'body', field: 'variables.branch', message: 'not allowed here' }],
          }),
          { status: 400, headers: { 'content-type': 'application/problem+json' } },
        ),
    );
    renderSignedIn(
      <TriggerForm workflowId={workflowId} variables={{ branch: declared.branch! }} onTriggered={vi.fn()} />,
    );
    await userEvent.click(await screen.findByRole('button', { name: 'Trigger run' }));
    const alerts = await screen.findAllByRole('alert');
    expect(alerts.map((a) => a.textContent)).toEqual([
      'not allowed here',
      expect.stringContaining('Invalid request'),
    ]);
  });

  it('says when the workflow declares no variables, and still triggers', async () => {
    triggerApi(() => problem(404, 'Not found', 'No workflow.'));
    renderSignedIn(<TriggerForm workflowId={workflowId} variables={undefined} onTriggered={vi.fn()} />);
    expect(await screen.findByText('This workflow declares no variables.')).toBeTruthy();
    await userEvent.click(screen.getByRole('button', { name: 'Trigger run' }));
    expect((await screen.findByRole('alert')).textContent).toContain('No workflow.');
  });
});
