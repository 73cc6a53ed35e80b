// One node's `/live` socket, kept open: reconnects with backoff when the node goes away, and treats
// a socket that has said nothing for a while as dead (a half-open connection after a partition
// never reports a close on its own).

const RETRY_DELAY_MS_MIN = 500;
const RETRY_DELAY_MS_MAX = 3_000;
const PING_INTERVAL_MS = 2_000;
/** Samples arrive every 250 ms and pings are answered: this much silence means the link is gone. */
const SILENCE_MS_MAX = 6_000;

export class LiveConnection {
  /**
   * @param {string} url ws://HOST:PORT/live
   * @param {{ onMessage: (message: object) => void, onState: (state: 'connecting' | 'up' | 'down', detail: { attempts: number, since: number, reason: string }) => void }} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.socket = null;
    this.attempts = 0;
    this.retryDelayMs = RETRY_DELAY_MS_MIN;
    this.lastHeardMs = 0;
    this.downSinceMs = Date.now();
    this.state = 'connecting';
    this.timer = setInterval(() => this.tick(), 500);
    this.connect();
  }

  connect() {
    this.attempts++;
    this.setState(this.state === 'down' ? 'down' : 'connecting', '');
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.onClosed(null, `bad address: ${error.message}`);
      return;
    }
    this.socket = socket;
    this.lastHeardMs = Date.now();
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      this.retryDelayMs = RETRY_DELAY_MS_MIN;
      this.lastPingMs = Date.now();
    });
    socket.addEventListener('message', (event) => {
      this.lastHeardMs = Date.now();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === 'hello') this.setState('up', '');
      this.handlers.onMessage(message);
    });
    socket.addEventListener('close', (event) => this.onClosed(socket, event.reason || (opened ? 'connection lost' : 'unreachable')));
    socket.addEventListener('error', () => {
      // A close event follows every error; it does the bookkeeping.
    });
  }

  onClosed(socket, reason) {
    if (socket !== null && socket !== this.socket) return;
    this.socket = null;
    if (this.state !== 'down') this.downSinceMs = Date.now();
    this.setState('down', reason);
    this.retryAtMs = Date.now() + this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, RETRY_DELAY_MS_MAX);
  }

  tick() {
    const now = Date.now();
    const socket = this.socket;
    if (socket === null) {
      if (now >= this.retryAtMs) this.connect();
      return;
    }
    if (socket.readyState === WebSocket.OPEN) {
      if (now - this.lastHeardMs > SILENCE_MS_MAX) {
        socket.close(4000, 'silent');
        this.onClosed(socket, `nothing heard for ${Math.round((now - this.lastHeardMs) / 1000)} s`);
        return;
      }
      if (now - (this.lastPingMs ?? 0) >= PING_INTERVAL_MS) {
        this.lastPingMs = now;
        socket.send('{"type":"ping"}');
      }
    } else if (socket.readyState === WebSocket.CONNECTING && now - this.lastHeardMs > SILENCE_MS_MAX) {
      socket.close();
      this.onClosed(socket, 'connection attempt timed out');
    }
  }

  setState(state, reason) {
    if (state === 'up') this.attempts = 0;
    this.state = state;
    this.handlers.onState(state, { attempts: this.attempts, since: this.downSinceMs, reason });
  }
}
