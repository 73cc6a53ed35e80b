/**
 * Errors of the session layer. A violation of the wire protocol by the peer is a `ProtocolError`
 * (from `../errors.ts`) with an `E_SESSION_*` code; the conditions below end a session without the
 * peer having broken the protocol. Codes are stable.
 */
import { HbftError } from '../errors.ts';

export const SessionErrorCode = {
  /** The server no longer holds the output this client needs: the session cannot resume. */
  gap: 'E_SESSION_GAP',
  /** A server refused the handshake as malformed or of an unsupported version (status 4). */
  rejected: 'E_SESSION_REJECTED',
  /** A serving node of the current generation has lost input it had acknowledged as committed. */
  inputLost: 'E_SESSION_INPUT_LOST',
  /** No server accepted the session within the reconnect deadline. */
  unreachable: 'E_SESSION_UNREACHABLE',
  /** The application closed the session. */
  closed: 'E_SESSION_CLOSED',
  /** More unacknowledged input than the resend buffer may hold. */
  resendFull: 'E_SESSION_RESEND_FULL',
  /** The output stream is not valid RESP, or carries a reply nobody asked for. */
  badReply: 'E_SESSION_BAD_REPLY',
} as const;
export type SessionErrorCode = (typeof SessionErrorCode)[keyof typeof SessionErrorCode];

export class SessionError extends HbftError {
  constructor(code: SessionErrorCode, message: string) {
    super(code, message);
  }
}
