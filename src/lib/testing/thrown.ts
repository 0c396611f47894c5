// Tests only: the typed error a synchronous call throws.
import { expect } from 'vitest';
import { AppError } from '../errors';

/** The AppError `f` throws; the test fails when it throws something else or nothing. */
export function thrown(f: () => unknown): AppError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected a typed error');
}
