/**
 * Error codes shared by every process. Callers tell errors apart by `code`, never by message
 * text, because messages may be reworded. docs/errors.md lists each code with its meaning.
 */
export const ERROR_CODES = [
  // Protocol and routing.
  'E_ENVELOPE_REJECTED',
  'E_CHANNEL_CLOSED',
  'E_POLICY_DENIED',
  'E_UNKNOWN_METHOD',
  'E_INVALID_PARAMS',
  'E_SERVICE_UNAVAILABLE',
  'E_TIMEOUT',
  'E_INTERNAL',
  // Auth.
  'E_PROFILE_EXISTS',
  'E_PROFILE_MISSING',
  'E_WEAK_PASSWORD',
  'E_WRONG_PASSWORD',
  'E_LOCKED_OUT',
  'E_SESSION_INVALID',
  // Storage.
  'E_CSV_INVALID',
  'E_NOT_FOUND',
  'E_STORAGE',
  // Sandbox.
  'E_STRATEGY_COMPILE',
  'E_STRATEGY_RUNTIME',
  'E_LIMIT_MEMORY',
  'E_LIMIT_TIME',
  'E_LIMIT_CPU',
  'E_LIMIT_ORDERS',
  'E_LIMIT_LOGS',
  'E_RESULT_INVALID',
  'E_RUN_ABORTED',
  // Integrity.
  'E_INTEGRITY',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && CODE_SET.has(value);
}

/**
 * Plain, copyable details attached to an error (for example `{ line: 12 }` for a CSV error).
 * Only strings, finite numbers and booleans, so that details can cross a process boundary and
 * never carry a secret object by accident.
 */
export type ErrorDetails = Record<string, string | number | boolean>;

/** The one error class of BackTestr: a stable code, a message for people, optional details. */
export class BacktestrError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BacktestrError';
    this.code = code;
    this.details = details;
  }

  /** Plain form that crosses the envelope protocol. */
  toWire(): WireError {
    return { code: this.code, message: this.message, details: this.details };
  }

  static fromWire(wire: WireError): BacktestrError {
    return new BacktestrError(wire.code, wire.message, wire.details);
  }
}

export interface WireError {
  code: ErrorCode;
  message: string;
  details: ErrorDetails;
}

/**
 * Converts anything thrown into a BacktestrError. An unexpected error becomes E_INTERNAL with a
 * generic message, so that stack traces and library messages (which may quote user data) never
 * cross a process boundary.
 */
export function toBacktestrError(error: unknown): BacktestrError {
  if (error instanceof BacktestrError) return error;
  return new BacktestrError('E_INTERNAL', 'internal error', {}, { cause: error });
}
