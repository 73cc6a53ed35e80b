/**
 * The live dashboard of one node, mounted on its status server: the page and its assets at `/`
 * and `/dashboard`, `/peer` (where the other node's dashboard is, when the daemon was told), and
 * the `/live` WebSocket that streams this node's feed. The page itself shows both nodes: it
 * connects to this node's `/live` and to the peer's.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { UsageError, assert } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { requestPath } from '../requestPath.ts';
import { LiveSocketServer, type LiveSource } from './liveSocket.ts';

/** Files the page is made of, by URL; nothing outside this table is served. */
const ASSETS: ReadonlyMap<string, { file: string; contentType: string }> = new Map([
  ['/dashboard/assets/dashboard.js', { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/assets/charts.js', { file: 'charts.js', contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/assets/liveConnection.js', { file: 'liveConnection.js', contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/assets/format.js', { file: 'format.js', contentType: 'text/javascript; charset=utf-8' }],
  ['/dashboard/assets/dashboard.css', { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' }],
  ['/dashboard/assets/favicon.svg', { file: 'favicon.svg', contentType: 'image/svg+xml' }],
]);
const PAGE_PATHS = new Set(['/', '/dashboard', '/dashboard/']);
const ASSET_DIR = new URL('./assets/', import.meta.url);
/**
 * The page loads only its own files and talks only to `/live` sockets (its node's and the peer's,
 * on another port) and its own `/peer`; charts set colours through style attributes.
 */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface DashboardOptions {
  feed: LiveSource;
  logger: Logger;
  /** HOST:PORT of the peer's status server, offered to the page by `/peer`. */
  peerHttp?: string;
  /** Unsent bytes a dashboard client may queue before it is dropped. */
  liveBufferedBytesMax?: number;
}

export class Dashboard {
  readonly live: LiveSocketServer;
  private readonly peerHttp: string | null;
  private readonly files = new Map<string, Buffer>();

  constructor(options: DashboardOptions) {
    if (options.peerHttp !== undefined && !/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/.test(options.peerHttp)) {
      throw new UsageError(`peer HTTP address: expected HOST:PORT, got "${options.peerHttp}"`);
    }
    this.peerHttp = options.peerHttp ?? null;
    this.live = new LiveSocketServer(options.feed, { logger: options.logger, bufferedBytesMax: options.liveBufferedBytesMax });
    // Read once at start: a missing asset is an installation error to see now, not on first view.
    for (const file of ['index.html', ...[...ASSETS.values()].map((asset) => asset.file)]) {
      this.files.set(file, readFileSync(new URL(file, ASSET_DIR)));
    }
  }

  attach(server: Server): void {
    this.live.attach(server);
  }

  /** Answers the dashboard's GET routes; false for any other request. */
  handle(request: IncomingMessage, response: ServerResponse): boolean {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    const path = requestPath(request);
    if (PAGE_PATHS.has(path)) {
      response.setHeader('content-security-policy', PAGE_CSP);
      this.sendFile(response, 'index.html', 'text/html; charset=utf-8');
      return true;
    }
    const asset = ASSETS.get(path);
    if (asset) {
      this.sendFile(response, asset.file, asset.contentType);
      return true;
    }
    if (path === '/peer') {
      // Fetched cross-port by a page served by the other node.
      response.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'cache-control': 'no-store' });
      response.end(`${JSON.stringify({ peer: this.peerHttp })}\n`);
      return true;
    }
    return false;
  }

  async close(): Promise<void> {
    await this.live.close();
  }

  private sendFile(response: ServerResponse, file: string, contentType: string): void {
    const body = this.files.get(file);
    assert(body !== undefined, `${file} is one of the assets read at start`);
    response.writeHead(200, {
      'content-type': contentType,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    response.end(body);
  }
}
