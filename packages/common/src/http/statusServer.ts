import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.ts';
import { listenOn } from '../transport/listen.ts';
import type { LiveFeed } from './liveFeed.ts';
import { Dashboard } from './dashboard/dashboard.ts';
import { requestPath } from './requestPath.ts';

/** What /readyz reports; `ready` decides the status code (200 or 503). */
export interface Readiness {
  ready: boolean;
  role: 'primary' | 'backup';
  generation: number;
  peerConnected: boolean;
  /** Age of the newest state the backup holds (primary: of the last acknowledged checkpoint). */
  replicationLagMs: number | null;
  /** Why the node answers clients or not (a primary: protected, syncing, holding, unprotected, fenced). */
  reason?: string;
  /** More about the reason: why the peer cannot be reached, say. */
  detail?: string | null;
  [field: string]: unknown;
}

export interface StatusServerOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: () => Readiness;
  logger: Logger;
  /** Extra routes (the dashboard): return true when handled. */
  extraRoutes?: (request: IncomingMessage, response: ServerResponse) => boolean;
  /** The node's live view, streamed to the dashboard. */
  feed?: LiveFeed;
  /** HOST:PORT of the peer's status server: the dashboard shows both nodes. */
  peerHttp?: string;
}

/**
 * Each daemon's HTTP endpoint: /healthz (the process is up: always 200, and the body says why the
 * node answers clients or not), /readyz (role, generation, peer, lag; 503 while the node does not
 * answer clients), /metrics (Prometheus text format), plus the dashboard's routes.
 */
export class StatusServer {
  readonly server: Server;
  private readonly options: StatusServerOptions;
  // --- dashboard (packages/common/src/http/dashboard/) ---
  private readonly dashboard: Dashboard | null;

  constructor(options: StatusServerOptions) {
    this.options = options;
    this.dashboard = options.feed ? new Dashboard({ feed: options.feed, logger: options.logger, peerHttp: options.peerHttp }) : null;
    this.server = createServer((request, response) => {
      this.handle(request, response).catch((error: Error) => {
        options.logger.error({ err: error.message, url: request.url }, 'status request failed');
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('internal error\n');
      });
    });
    this.dashboard?.attach(this.server);
  }

  async listen(): Promise<{ host: string; port: number }> {
    const port = await listenOn(this.server, this.options.host, this.options.port, 'http (status and dashboard)');
    return { host: this.options.host, port };
  }

  async close(): Promise<void> {
    // Upgraded dashboard sockets are not HTTP connections: closeAllConnections does not end them.
    await this.dashboard?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = requestPath(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      if (this.options.extraRoutes?.(request, response)) return;
      response.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' });
      response.end('only GET is supported\n');
      return;
    }
    if (path === '/healthz') {
      const { role, ready, reason, detail } = this.options.readiness();
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(`${JSON.stringify({ status: 'ok', role, ready, reason: reason ?? null, detail: detail ?? null })}\n`);
      return;
    }
    if (path === '/readyz') {
      const readiness = this.options.readiness();
      response.writeHead(readiness.ready ? 200 : 503, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      response.end(`${JSON.stringify(readiness)}\n`);
      return;
    }
    if (path === '/metrics') {
      const body = await this.options.registry.metrics();
      response.writeHead(200, { 'content-type': this.options.registry.contentType });
      response.end(body);
      return;
    }
    if (this.dashboard?.handle(request, response)) return;
    if (this.options.extraRoutes?.(request, response)) return;
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end(`no such page: ${path}\n`);
  }
}
