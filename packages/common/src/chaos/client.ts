/**
 * A client of the control API (ours, or a real Toxiproxy for the parts they share). Used by the
 * `hbft chaos` subcommands and by tests; `scripts/chaos.sh` can use curl against the same routes.
 */
import { ChaosApiError, ChaosUnreachableError } from './errors.ts';
import type { Endpoint, PartitionMode, StreamName, Toxic } from './model.ts';
import type { ProxyStats } from './proxy.ts';
import { formatEndpoint } from '../units.ts';

export interface ProxyInfo {
  name: string;
  listen: string;
  upstream: string;
  enabled: boolean;
  partition: PartitionMode | null;
  toxics: Toxic[];
  stats?: ProxyStats;
}

export interface ToxicInput {
  name?: string;
  type: string;
  stream?: StreamName;
  toxicity?: number;
  attributes?: Record<string, number>;
}

export class ChaosClient {
  private readonly baseUrl: string;

  constructor(
    api: Endpoint,
    private readonly timeoutMs = 5000,
  ) {
    const host = api.host === '0.0.0.0' ? '127.0.0.1' : api.host === '::' ? '::1' : api.host;
    this.baseUrl = `http://${formatEndpoint({ host, port: api.port })}`;
  }

  version(): Promise<{ version: string }> {
    return this.request('GET', '/version');
  }

  listProxies(): Promise<Record<string, ProxyInfo>> {
    return this.request('GET', '/proxies');
  }

  getProxy(name: string): Promise<ProxyInfo> {
    return this.request('GET', `/proxies/${encodeURIComponent(name)}`);
  }

  createProxy(proxy: { name: string; listen: string; upstream: string; enabled?: boolean }): Promise<ProxyInfo> {
    return this.request('POST', '/proxies', proxy);
  }

  updateProxy(
    name: string,
    update: { enabled?: boolean; partition?: PartitionMode; listen?: string; upstream?: string },
  ): Promise<ProxyInfo> {
    return this.request('POST', `/proxies/${encodeURIComponent(name)}`, update);
  }

  deleteProxy(name: string): Promise<void> {
    return this.request('DELETE', `/proxies/${encodeURIComponent(name)}`);
  }

  listToxics(proxy: string): Promise<Toxic[]> {
    return this.request('GET', `/proxies/${encodeURIComponent(proxy)}/toxics`);
  }

  getToxic(proxy: string, name: string): Promise<Toxic> {
    return this.request('GET', `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`);
  }

  addToxic(proxy: string, toxic: ToxicInput): Promise<Toxic> {
    return this.request('POST', `/proxies/${encodeURIComponent(proxy)}/toxics`, toxic);
  }

  updateToxic(proxy: string, name: string, change: { attributes?: Record<string, number>; toxicity?: number }): Promise<Toxic> {
    return this.request('POST', `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`, change);
  }

  deleteToxic(proxy: string, name: string): Promise<void> {
    return this.request('DELETE', `/proxies/${encodeURIComponent(proxy)}/toxics/${encodeURIComponent(name)}`);
  }

  /** Adds the toxic, or updates it in place when one of that name exists (replacing its attributes). */
  async putToxic(proxy: string, toxic: ToxicInput & { name: string }): Promise<Toxic> {
    const existing = (await this.listToxics(proxy)).find((candidate) => candidate.name === toxic.name);
    if (!existing) return this.addToxic(proxy, toxic);
    if (existing.type !== toxic.type || existing.stream !== (toxic.stream ?? 'downstream')) {
      await this.deleteToxic(proxy, toxic.name);
      return this.addToxic(proxy, toxic);
    }
    return this.updateToxic(proxy, toxic.name, { attributes: toxic.attributes ?? {}, toxicity: toxic.toxicity ?? 1 });
  }

  reset(): Promise<void> {
    return this.request('POST', '/reset');
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ChaosUnreachableError(`cannot reach the chaos API at ${this.baseUrl} (${cause})`);
    }
    const text = await response.text();
    const parsed = text ? safeParse(text) : undefined;
    if (!response.ok) {
      const error = (parsed ?? {}) as { error?: string; code?: string; field?: string };
      throw new ChaosApiError(
        response.status,
        error.code ?? `E_HTTP_${response.status}`,
        error.error ?? `HTTP ${response.status} from ${method} ${path}`,
        error.field,
      );
    }
    return parsed as T;
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.trim() };
  }
}
