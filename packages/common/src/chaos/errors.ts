/**
 * Errors of the chaos proxy and its control API, each with a stable code. The API answers them with
 * an HTTP status (see `httpStatusOf` in api.ts) and a JSON body naming the offending field.
 */
import { HbftError, UsageError } from '../errors.ts';

/** A field of an API request (or a CLI argument) is missing, malformed or out of range. */
export class InvalidFieldError extends UsageError {
  /** Dotted path of the field, e.g. `attributes.latency`. */
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

/** A named proxy or toxic does not exist. */
export class ChaosNotFoundError extends HbftError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('E_CHAOS_NOT_FOUND', message);
    this.field = field;
  }
}

/** A proxy or toxic of that name already exists, or a listen address is taken. */
export class ChaosConflictError extends HbftError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('E_CHAOS_CONFLICT', message);
    this.field = field;
  }
}

/** The control API answered a client request with an error. */
export class ChaosApiError extends HbftError {
  readonly status: number;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(code, message);
    this.status = status;
    this.field = field;
  }
}

/** The control API could not be reached at all. */
export class ChaosUnreachableError extends HbftError {
  constructor(message: string) {
    super('E_CHAOS_UNREACHABLE', message);
  }
}
