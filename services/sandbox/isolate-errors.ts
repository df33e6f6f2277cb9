/**
 * Turns errors that isolated-vm raises for a strategy isolate into BacktestrErrors that name the
 * strategy's own file, line and column. Every text read here came out of the isolate, so it is
 * cut to a fixed length before any parsing: a strategy controls how long it is.
 */
import { BacktestrError, type ErrorDetails } from '../../protocol/errors';
import { locateCompileError, locateInStack } from './error-location';

/** Maximum length of an error message or stack text taken from the isolate, in characters. */
export const MAX_ERROR_TEXT_LENGTH = 4000;

export interface ErrorFields {
  name: string;
  message: string;
  stack: string;
}

/**
 * Reads name, message and stack of an error from isolated-vm, each cut to
 * MAX_ERROR_TEXT_LENGTH. The check is realm-independent (`instanceof Error` fails when this
 * module runs in a vm context such as a jest environment, because isolated-vm builds its errors
 * with the main realm's constructors). isolated-vm has already copied these fields into plain
 * strings, so reading them runs no strategy code.
 */
export function errorFields(error: unknown): ErrorFields | null {
  if (Object.prototype.toString.call(error) !== '[object Error]') return null;
  const { name, message, stack } = error as Error;
  const clip = (value: unknown): string => (typeof value === 'string' ? value.slice(0, MAX_ERROR_TEXT_LENGTH) : '');
  return { name: clip(name).slice(0, 200), message: clip(message), stack: clip(stack) };
}

/** Builds E_STRATEGY_COMPILE from a SyntaxError that V8 raised while compiling `filename`. */
export function compileError(error: unknown, filename: string): BacktestrError {
  const fields = errorFields(error);
  if (fields === null || fields.name !== 'SyntaxError') return new BacktestrError('E_INTERNAL', 'strategy compilation failed', {}, { cause: error });
  const { text, location } = locateCompileError(fields.message, filename);
  if (location === null) return new BacktestrError('E_STRATEGY_COMPILE', `${filename}: SyntaxError: ${text}`, { file: filename });
  return new BacktestrError('E_STRATEGY_COMPILE', `${filename}:${location.line}:${location.column}: SyntaxError: ${text}`, {
    file: filename,
    line: location.line,
    column: location.column,
  });
}

/** Builds E_STRATEGY_RUNTIME for an error that strategy code raised outside the runner's calls. */
export function asyncStrategyError(error: unknown, filename: string): BacktestrError {
  const fields = errorFields(error);
  const name = fields?.name ?? 'Error';
  const message = fields?.message ?? 'the strategy raised a value that is not an Error';
  const location = fields === null ? null : locateInStack(fields.stack, filename);
  const details: ErrorDetails = { file: filename, phase: 'async' };
  let where = filename;
  if (location !== null) {
    details.line = location.line;
    details.column = location.column;
    where += `:${location.line}:${location.column}`;
  }
  return new BacktestrError('E_STRATEGY_RUNTIME', `${where}: ${name}: ${message} (in code that ran after onBar returned, such as a promise callback)`, details);
}
