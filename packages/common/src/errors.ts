/**
 * Error classes with stable codes. Untrusted input (flags, files, frames, client bytes) is answered
 * with one of these; a message names what was wrong. Programmer errors use `assert` instead and
 * crash loudly.
 */
export class HbftError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A command-line flag, environment variable or configuration value is out of range or malformed. */
export class UsageError extends HbftError {
  constructor(message: string) {
    super('E_USAGE', message);
  }
}

/**
 * A named setting has a bad value. Library code names the setting (`epoch-ms`), never how a user
 * gave it: the front end says that (the CLI reports it as the flag `--epoch-ms`).
 */
export class SettingError extends UsageError {
  readonly setting: string;
  readonly problem: string;
  constructor(setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.setting = setting;
    this.problem = problem;
  }
}

/** A guest image (ELF file) cannot be loaded. */
export class GuestImageError extends HbftError {
  constructor(message: string) {
    super('E_GUEST_IMAGE', message);
  }
}

/** A state blob (CPU or device state, checkpoint body) is malformed or of the wrong version. */
export class StateFormatError extends HbftError {
  constructor(message: string) {
    super('E_STATE_FORMAT', message);
  }
}

/** A replication frame or message violates the wire protocol. */
export class ProtocolError extends HbftError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** A TAP device cannot be opened or configured (no /dev/net/tun, no CAP_NET_ADMIN, a bad name). */
export class TapError extends HbftError {
  constructor(message: string) {
    super('E_TAP', message);
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
