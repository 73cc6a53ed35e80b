/**
 * The HTTP control API, modelled on Toxiproxy's so that its users and scripts feel at home:
 *
 *   GET    /version                         {"version": ...}
 *   POST   /reset                           enable every proxy, remove every toxic
 *   GET    /proxies                         {name: proxy, ...}
 *   POST   /proxies                         create {name, listen, upstream, enabled?, partition?}
 *   GET    /proxies/{proxy}                 one proxy with its toxics and stats
 *   POST   /proxies/{proxy}                 update {listen?, upstream?, enabled?, partition?}
 *   DELETE /proxies/{proxy}
 *   GET    /proxies/{proxy}/toxics          [toxic, ...]
 *   POST   /proxies/{proxy}/toxics          add {name?, type, stream?, toxicity?, attributes}
 *   GET    /proxies/{proxy}/toxics/{toxic}
 *   POST   /proxies/{proxy}/toxics/{toxic}  update {attributes?, toxicity?}
 *   DELETE /proxies/{proxy}/toxics/{toxic}
 *
 * Errors are JSON `{error, status, code, field}`: 400 bad input (naming the field), 404 unknown proxy,
 * toxic or route, 405 wrong method, 409 name or port taken, 413 body too large. Nothing a client
 * sends can crash the server: anything unexpected is a logged 500.
 */
import http from 'node:http';
import { HbftError, UsageError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { listenOn } from '../transport/listen.ts';
import { ChaosConflictError, ChaosNotFoundError, InvalidFieldError } from './errors.ts';
import { chaosApiBodyBytesMax } from '../limits.ts';
import type { Endpoint } from './model.ts';
import type { ProxyRegistry } from './registry.ts';
import { parseJsonBody, parseName, parseProxyCreate, parseProxyUpdate } from './validate.ts';

export const CHAOS_API_VERSION = '0.1.0';

export interface ChaosApiOptions {
  registry: ProxyRegistry;
  listen: Endpoint;
  logger: Logger;
}

interface Reply {
  status: number;
  body?: unknown;
}

class RouteError extends HbftError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(status === 404 ? 'E_CHAOS_NO_ROUTE' : 'E_CHAOS_METHOD', message);
  }
}

class BodyTooLargeError extends InvalidFieldError {}

export class ChaosApiServer {
  private constructor(
    private readonly server: http.Server,
    readonly address: Endpoint,
  ) {}

  static async start(options: ChaosApiOptions): Promise<ChaosApiServer> {
    const logger = options.logger.child({ component: 'api' });
    const server = http.createServer((request, response) => {
      void handle(options.registry, logger, request, response);
    });
    const port = await listenOn(server, options.listen.host, options.listen.port, 'api');
    logger.info({ host: options.listen.host, port }, 'chaos API listening');
    return new ChaosApiServer(server, { host: options.listen.host, port });
  }

  /** Stops listening and drops idle keep-alive connections, so the port is free when this resolves. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

async function handle(
  registry: ProxyRegistry,
  logger: Logger,
  request: http.IncomingMessage,
  response: http.ServerResponse,
): Promise<void> {
  let reply: Reply;
  try {
    const text = await readBody(request);
    reply = await route(registry, request.method ?? 'GET', request.url ?? '/', text);
  } catch (error) {
    reply = errorReply(error, logger);
    if (error instanceof BodyTooLargeError) response.setHeader('Connection', 'close');
  }
  logger.debug({ method: request.method, url: request.url, status: reply.status }, 'request');
  if (reply.body === undefined) {
    response.writeHead(reply.status).end();
  } else {
    response.writeHead(reply.status, { 'Content-Type': 'application/json' }).end(`${JSON.stringify(reply.body)}\n`);
  }
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > chaosApiBodyBytesMax) {
        request.removeAllListeners('data');
        request.resume(); // discard the rest rather than buffer it
        reject(new BodyTooLargeError('body', `larger than ${chaosApiBodyBytesMax} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

async function route(registry: ProxyRegistry, method: string, url: string, text: string): Promise<Reply> {
  const path = url.replace(/\?.*/s, '').replace(/\/+$/, '');
  const parts = path
    .split('/')
    .slice(1)
    .map((part) => decodeURIComponent(part));
  const allow = (...methods: string[]): void => {
    if (!methods.includes(method)) throw new RouteError(405, `${method} is not allowed on ${path} (allowed: ${methods.join(', ')})`);
  };

  if (parts.length === 1 && parts[0] === 'version') {
    allow('GET');
    return { status: 200, body: { version: CHAOS_API_VERSION, server: 'hbft-chaos', api: 'toxiproxy-2' } };
  }
  if (parts.length === 1 && parts[0] === 'reset') {
    allow('POST');
    await registry.reset();
    return { status: 204 };
  }
  if (parts[0] !== 'proxies' || parts.length > 4 || (parts.length >= 3 && parts[2] !== 'toxics')) {
    throw new RouteError(404, `no route ${path || '/'} (see GET /proxies, /version, POST /reset)`);
  }
  if (parts.length === 1) {
    allow('GET', 'POST');
    if (method === 'GET') {
      return { status: 200, body: Object.fromEntries(registry.list().map((proxy) => [proxy.name, proxy.toJSON()])) };
    }
    const proxy = await registry.create(parseProxyCreate(parseJsonBody(text)));
    return { status: 201, body: proxy.toJSON() };
  }
  const proxyName = parseName(parts[1], 'proxy');
  if (parts.length === 2) {
    allow('GET', 'POST', 'DELETE');
    if (method === 'GET') return { status: 200, body: registry.get(proxyName).toJSON() };
    if (method === 'DELETE') {
      await registry.remove(proxyName);
      return { status: 204 };
    }
    registry.get(proxyName); // 404 before 400: an unknown proxy is the bigger mistake
    const proxy = await registry.update(proxyName, parseProxyUpdate(parseJsonBody(text), proxyName));
    return { status: 200, body: proxy.toJSON() };
  }
  if (parts.length === 3) {
    allow('GET', 'POST');
    if (method === 'GET') return { status: 200, body: registry.get(proxyName).getToxics() };
    registry.get(proxyName);
    return { status: 200, body: await registry.addToxic(proxyName, parseJsonBody(text)) };
  }
  const toxicName = parseName(parts[3], 'toxic');
  allow('GET', 'POST', 'DELETE');
  if (method === 'GET') return { status: 200, body: registry.getToxic(proxyName, toxicName) };
  if (method === 'DELETE') {
    await registry.removeToxic(proxyName, toxicName);
    return { status: 204 };
  }
  registry.getToxic(proxyName, toxicName);
  return { status: 200, body: await registry.updateToxic(proxyName, toxicName, parseJsonBody(text)) };
}

function errorReply(error: unknown, logger: Logger): Reply {
  const body = (status: number, code: string, message: string, field?: string): Reply => ({
    status,
    body: { error: message, status, code, ...(field ? { field } : {}) },
  });
  if (error instanceof BodyTooLargeError) return body(413, error.code, error.message, error.field);
  if (error instanceof InvalidFieldError) return body(400, error.code, error.message, error.field);
  if (error instanceof ChaosNotFoundError) return body(404, error.code, error.message, error.field);
  if (error instanceof ChaosConflictError) return body(409, error.code, error.message, error.field);
  if (error instanceof RouteError) return body(error.status, error.code, error.message);
  if (error instanceof UsageError) return body(400, error.code, error.message);
  if (error instanceof URIError) return body(400, 'E_USAGE', `path: ${error.message}`, 'path');
  logger.error({ err: error }, 'request failed unexpectedly');
  return body(500, 'E_CHAOS_INTERNAL', `internal error: ${(error as Error)?.message ?? String(error)}`);
}
