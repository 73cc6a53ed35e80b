/**
 * The control channel: one frame per binary WebSocket message, for the handshake, heartbeats,
 * acks and other small messages. It is a connection of its own so that a heartbeat never queues
 * behind checkpoint bytes (design.md §3).
 *
 * ws settings on both sides: perMessageDeflate off (the client enables it by default; control
 * messages are tiny and compression costs latency), maxPayload = controlMessageBytesMax (a header
 * and the largest meta: page data never travels here, so it does not grow with guest memory),
 * TCP_NODELAY on (ws sets it; we set it too, explicitly). Client frames keep ws's default random
 * masking: control traffic is small, so masking in JavaScript costs nothing that matters.
 */
import net from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { AuthRole } from '../protocol/seal.ts';
import { ProtocolErrorCode, protocolFailure } from '../protocol/codes.ts';
import { concatFrame, type EncodedFrame } from '../protocol/frame.ts';
import { authTimeoutMs, controlMessageBytesMax } from '../protocol/limits.ts';
import { FrameConnection, closeCodeGoodbye, closeLingerMs, type CloseInfo, type ConnectionOptions } from './connection.ts';

/** The HTTP path of the control channel's upgrade request. */
export const controlPath = '/hbft/control';
/** The HTTP path of the heartbeat channel's upgrade request (the same transport as control). */
export const heartbeatPath = '/hbft/heartbeat';

/** The channels that travel as WebSocket messages. */
export type WsChannel = 'control' | 'heartbeat';

export function wsPathFor(channel: WsChannel): string {
  return channel === 'control' ? controlPath : heartbeatPath;
}

/** Queued bytes above which `send` on the control channel reports backpressure (it should never). */
export const controlWriteBufferBytesHigh = 1024 * 1024;

/** WebSocket close codes (RFC 6455 §7.4.1). */
const wsCloseNormal = 1000;
const wsCloseProtocolError = 1002;

export class ControlConnection extends FrameConnection {
  private readonly ws: WebSocket;
  private lingerTimer: NodeJS.Timeout | null = null;

  /** Wraps an open WebSocket and starts authentication. */
  constructor(ws: WebSocket, role: AuthRole, options: ConnectionOptions, peer: string, channel: WsChannel = 'control') {
    super(channel, role, options, controlWriteBufferBytesHigh, { peer });
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.closed !== null) return;
      if (!isBinary) {
        this.fail(
          protocolFailure(ProtocolErrorCode.WS_MESSAGE, `a text message on the ${this.channel} channel (frames are binary messages)`),
        );
        return;
      }
      const message = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      const result = this.decoder.decodeMessage(message);
      this.receive(result.failure === null ? { frames: [result.frame], failure: null } : { frames: [], failure: result.failure });
    });
    ws.on('error', (error: Error & { code?: string }) => {
      // ws reports protocol violations (oversize message, bad opcode...) here, then closes.
      this.transportClosed(
        `WebSocket error ${error.code ?? ''} ${error.message}`.trim(),
        error.code?.startsWith('WS_ERR_') ? protocolFailure(ProtocolErrorCode.WS_MESSAGE, error.message) : null,
      );
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer);
      this.transportClosed(`the WebSocket closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`);
    });
    this.startAuthentication();
  }

  protected writeFrame(frame: EncodedFrame): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      this.written(frame.bytes);
      return;
    }
    this.ws.send(concatFrame(frame), { binary: true }, () => this.written(frame.bytes));
  }

  protected endTransport(info: CloseInfo): void {
    if (this.ws.readyState === WebSocket.CLOSED || this.ws.readyState === WebSocket.CLOSING) return;
    // The close frame follows the queued ERROR or GOODBYE; its reason is limited to 123 bytes.
    const code = info.code === closeCodeGoodbye ? wsCloseNormal : wsCloseProtocolError;
    this.ws.close(code, Buffer.from(info.code).subarray(0, 123));
    this.lingerTimer = setTimeout(() => this.ws.terminate(), closeLingerMs);
    this.lingerTimer.unref();
  }
}

/** ws server options for the control channel (used by the shared listener, noServer). */
export function createControlServer(): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: controlMessageBytesMax,
    clientTracking: false,
  });
}

export interface ConnectControlOptions extends ConnectionOptions {
  host: string;
  port: number;
  /** The control channel by default; the heartbeat channel travels the same way. */
  channel?: WsChannel;
}

/** Connects the control (or heartbeat) channel to a backup and authenticates; resolves when authenticated. */
export function connectControl(options: ConnectControlOptions): Promise<ControlConnection> {
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  const channel = options.channel ?? 'control';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${host}:${options.port}${wsPathFor(channel)}`, {
      perMessageDeflate: false,
      maxPayload: controlMessageBytesMax,
      handshakeTimeout: options.authTimeoutMs ?? authTimeoutMs,
      createConnection: ((connectOptions: net.NetConnectOpts) => {
        const socket = net.connect(connectOptions);
        socket.setNoDelay(true);
        return socket;
      }) as typeof net.createConnection,
    });
    const onError = (error: Error): void => reject(error);
    ws.once('error', onError);
    ws.once('unexpected-response', (_request, response) => {
      ws.removeListener('error', onError);
      ws.on('error', () => {});
      reject(new Error(`the ${channel} upgrade was answered with HTTP ${response.statusCode}`));
      ws.terminate();
    });
    ws.once('open', () => {
      ws.removeListener('error', onError);
      const connection = new ControlConnection(ws, 'initiator', options, `${options.host}:${options.port}`, channel);
      connection.ready.then(() => resolve(connection), reject);
    });
  });
}
