import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequeueDialog } from '../pages/quarantine/requeue-dialog';
import { readCreateTaskForm } from '../pages/tasks/create-task-form';
import { json, mockApi, renderSignedIn } from '../test-utils';
import { parseJsonObject } from './json-editor';

afterEach(() => vi.unstubAllGlobals());

describe('parseJsonObject', () => {
  it('accepts a JSON object, and blank as no payload', () => {
    expect(parseJsonObject('{"a": [1, {"b": null}]}')).toEqual({ ok: true, value: { a: [1, { b: null }] } });
    expect(parseJsonObject('  \n ')).toEqual({ ok: true, value: undefined });
  });

  it('refuses what is not JSON, naming the line and column where the browser tells the position', () => {
    const result = parseJsonObject('{\n  "a": 1,\n  oops\n}');
    expect(result.ok).toBe(false);
    expect((result as { error: string }).error).toMatch(/^not valid JSON: /);
    expect((result as { error: string }).error).toMatch(/line 3, column 3|oops|Unexpected token/);
  });

  it('refuses JSON that is not an object, saying what it is', () => {
    expect(parseJsonObject('[1, 2]')).toEqual({
      ok: false,
      error: 'must be a JSON object ({…}), not an array',
    });
    expect(parseJsonObject('null')).toEqual({ ok: false, error: 'must be a JSON object ({…}), not null' });
    expect(parseJsonObject('"text"')).toEqual({
      ok: false,
      error: 'must be a JSON object ({…}), not a string',
    });
    expect(parseJsonObject('42')).toEqual({ ok: false, error: 'must be a JSON object ({…}), not a number' });
  });
});

describe('readCreateTaskForm', () => {
  const fields = {
    title: 'Say hello',
    description: '',
    capability: 'echo',
    priority: '0',
    max_retries: '3',
    payload: '{"hello": "world"}',
  };

  it('builds the CreateTaskBody the API takes', () => {
    expect(readCreateTaskForm(fields)).toEqual({
      ok: true,
      body: {
        title: 'Say hello',
        capability: 'echo',
        priority: 0,
        max_retries: 3,
        payload: { hello: 'world' },
      },
    });
    expect(
      readCreateTaskForm({ ...fields, capability: '', priority: '', max_retries: '', payload: '' }),
    ).toEqual({
      ok: true,
      body: { title: 'Say hello' },
    });
  });

  it('names each bad field as the contract would: title, capability, numbers out of range, payload', () => {
    const read = readCreateTaskForm({
      title: '   ',
      description: '',
      capability: 'Not A Slug',
      priority: '5000',
      max_retries: '1.5',
      payload: '[]',
    });
    expect(read.ok).toBe(false);
    const errors = (read as { errors: Record<string, string> }).errors;
    expect(Object.keys(errors).sort()).toEqual(['capability', 'max_retries', 'payload', 'priority', 'title']);
    expect(errors.capability).toMatch(/lowercase slug/);
    expect(errors.max_retries).toBe('must be a whole number');
    expect(errors.payload).toMatch(/not an array/);
  });
});

describe('RequeueDialog', () => {
  const task = {
    id: '0b7c0000-0000-4000-8000-000000000001',
    title: 'flaky build',
    payload: { command: ['make'] },
  } as Parameters<typeof RequeueDialog>[0]['task'];

  function requeueApi() {
    const bodies: unknown[] = [];
    mockApi('supervisor', async (url, init) => {
      if (url.pathname.endsWith('/requeue')) {
        bodies.push(JSON.parse(String(init?.body)));
        return json({ ...task, status: 'TODO' });
      }
      return undefined;
    });
    return bodies;
  }

  it('requeues as it is when the payload is untouched (no payload sent)', async () => {
    const bodies = requeueApi();
    const onClose = vi.fn();
    renderSignedIn(<RequeueDialog task={task} onClose={onClose} />);
    await userEvent.click(await screen.findByRole('button', { name: 'Requeue' }));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(bodies).toEqual([{}]);
  });

  it('sends an edited payload, and refuses one that is not a JSON object before asking the API', async () => {
    const bodies = requeueApi();
    const onClose = vi.fn();
    renderSignedIn(<RequeueDialog task={task} onClose={onClose} />);
    const editor = await screen.findByLabelText('Payload');
    await userEvent.clear(editor);
    await userEvent.type(editor, '[[1]');
    await userEvent.click(screen.getByRole('button', { name: 'Requeue with this payload' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/not an array/);
    expect(bodies).toEqual([]);
    await userEvent.clear(editor);
    await userEvent.type(editor, '{{"command": [["make", "-j1"]}');
    await userEvent.click(screen.getByRole('button', { name: 'Requeue with this payload' }));
    await waitFor(() => expect(onClose).toHaveBeenCalled());
    expect(bodies).toEqual([{ payload: { command: ['make', '-j1'] } }]);
  });
});
