import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTaskMessage, decodeTaskMessage } from './message';

interface Sample {
  name: string;
  valid: boolean;
  /** A JSON value: the delivery body is its JSON text. */
  message?: unknown;
  /** The delivery body's exact text, for what a JSON value cannot carry (not JSON, NaN, keys given twice). */
  body?: string;
}

// Written with the Python SDK's tests, which hold it to the same verdicts (devart-agent-template/tests/test_contract.py).
const samplesFile = join(import.meta.dirname, '../../../devart-agent-template/tests/contract-samples.json');
const { samples } = JSON.parse(readFileSync(samplesFile, 'utf8')) as { samples: Sample[] };
const bodyOf = (sample: Sample) => sample.body ?? JSON.stringify(sample.message);

describe('the SDK’s verdict on a delivery, on the samples the Python SDK shares', () => {
  it('has samples of both verdicts, each with a message or a body', () => {
    expect(new Set(samples.map((s) => s.valid))).toEqual(new Set([true, false]));
    for (const sample of samples)
      expect(sample.body === undefined, sample.name).toBe(sample.message !== undefined);
  });

  it.each(samples.map((sample) => [sample.name, sample] as const))('%s', (_name, sample) => {
    // The bytes on the wire, and the same body as text: one verdict.
    const verdict = decodeTaskMessage(Buffer.from(bodyOf(sample), 'utf8'));
    expect(decodeTaskMessage(bodyOf(sample)).valid).toBe(verdict.valid);
    expect(verdict.valid, verdict.valid ? 'accepted' : verdict.reason).toBe(sample.valid);
    if (verdict.valid) {
      // What reaches the callback: ids lowercased, attempt a safe integer.
      expect(verdict.message.task_id).toBe(verdict.message.task_id.toLowerCase());
      expect(Number.isSafeInteger(verdict.message.attempt)).toBe(true);
    }
  });

  it('says which rule a message broke', () => {
    const good = samples.find((s) => s.name === 'a complete message')!.message as Record<string, unknown>;
    expect(checkTaskMessage({ ...good, attempt: 0 })).toEqual({
      valid: false,
      reason: expect.stringMatching(/^attempt: /),
    });
    const { title: _, ...untitled } = good;
    expect(checkTaskMessage(untitled)).toEqual({ valid: false, reason: expect.stringMatching(/^title: /) });
    expect(decodeTaskMessage('task 0b7c3d7e please')).toEqual({
      valid: false,
      reason: expect.stringMatching(/^not JSON: /),
    });
  });
});
