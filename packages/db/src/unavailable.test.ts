import { describe, expect, it } from 'vitest';
import { asDatabaseError, DatabaseUnavailableError, isConnectionError } from './unavailable';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isConnectionError', () => {
  it('knows the faults of a connection or a server that is going away', () => {
    for (const error of [
      withCode('57P01', 'terminating connection due to administrator command'),
      withCode('57P02'),
      withCode('57P03', 'the database system is starting up'),
      withCode('53300', 'sorry, too many clients already'),
      withCode('08006'),
      withCode('ECONNREFUSED'),
      withCode('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout'),
      new Error('timeout exceeded when trying to connect'),
      new AggregateError([withCode('ECONNREFUSED')], 'connect failed'),
    ]) {
      expect(isConnectionError(error), error.message).toBe(true);
    }
  });

  it('leaves statement errors alone: they are bugs or bad input, not outages', () => {
    for (const error of [
      withCode('23505'),
      withCode('42P01'),
      withCode('22P05'),
      new Error('boom'),
      'text',
    ]) {
      expect(isConnectionError(error)).toBe(false);
      expect(asDatabaseError(error)).toBe(error);
    }
  });

  it('wraps a connection fault with its cause', () => {
    const cause = withCode('57P01', 'terminating connection due to administrator command');
    const wrapped = asDatabaseError(cause);
    expect(wrapped).toBeInstanceOf(DatabaseUnavailableError);
    expect((wrapped as DatabaseUnavailableError).cause).toBe(cause);
    expect((wrapped as DatabaseUnavailableError).commitUnknown).toBe(false);
  });
});
