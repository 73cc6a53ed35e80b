/**
 * The named proxies of one chaos process and the operations the control API offers on them. Requests
 * arrive concurrently, so every change runs through one queue: a create racing a delete of the same
 * name, or two partitions of one proxy, cannot interleave halfway.
 */
import type { Logger } from '../log.ts';
import { ChaosConflictError, ChaosNotFoundError, InvalidFieldError } from './errors.ts';
import { proxiesMax, toxicsPerProxyMax } from '../limits.ts';
import type { Toxic } from './model.ts';
import { ChaosProxy } from './proxy.ts';
import type { RandomSource } from './random.ts';
import { parseToxicCreate, parseToxicUpdate, type ProxyCreate, type ProxyUpdate } from './validate.ts';

export interface ProxyRegistryOptions {
  logger: Logger;
  clock?: () => number;
  random?: RandomSource;
}

export class ProxyRegistry {
  private readonly proxies = new Map<string, ChaosProxy>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ProxyRegistryOptions) {}

  list(): ChaosProxy[] {
    return [...this.proxies.values()];
  }

  get(name: string): ChaosProxy {
    const proxy = this.proxies.get(name);
    if (!proxy) throw new ChaosNotFoundError('proxy', `no proxy named "${name}"`);
    return proxy;
  }

  getToxic(proxyName: string, toxicName: string): Toxic {
    const toxic = this.get(proxyName).getToxic(toxicName);
    if (!toxic) throw new ChaosNotFoundError('toxic', `proxy "${proxyName}" has no toxic named "${toxicName}"`);
    return toxic;
  }

  create(config: ProxyCreate): Promise<ChaosProxy> {
    return this.exclusive(async () => {
      if (this.proxies.has(config.name)) throw new ChaosConflictError('name', `a proxy named "${config.name}" already exists`);
      if (this.proxies.size >= proxiesMax) throw new InvalidFieldError('name', `at most ${proxiesMax} proxies per process`);
      const proxy = new ChaosProxy({ ...this.options, name: config.name, listen: config.listen, upstream: config.upstream });
      await proxy.start(config.enabled, config.partition);
      this.proxies.set(config.name, proxy);
      return proxy;
    });
  }

  update(name: string, update: ProxyUpdate): Promise<ChaosProxy> {
    return this.exclusive(async () => {
      const proxy = this.get(name);
      if (update.upstream) proxy.setUpstream(update.upstream);
      if (update.listen) await proxy.setListen(update.listen);
      if (update.enabled !== undefined) await proxy.setEnabled(update.enabled, update.partition);
      return proxy;
    });
  }

  remove(name: string): Promise<void> {
    return this.exclusive(async () => {
      const proxy = this.get(name);
      this.proxies.delete(name);
      await proxy.close();
    });
  }

  addToxic(proxyName: string, body: unknown): Promise<Toxic> {
    return this.exclusive(async () => {
      const proxy = this.get(proxyName);
      const toxic = parseToxicCreate(body);
      if (proxy.getToxic(toxic.name)) {
        throw new ChaosConflictError(
          'name',
          `proxy "${proxyName}" already has a toxic named "${toxic.name}" (update it with POST .../toxics/${toxic.name})`,
        );
      }
      if (proxy.getToxics().length >= toxicsPerProxyMax)
        throw new InvalidFieldError('name', `at most ${toxicsPerProxyMax} toxics per proxy`);
      proxy.putToxic(toxic);
      return toxic;
    });
  }

  updateToxic(proxyName: string, toxicName: string, body: unknown): Promise<Toxic> {
    return this.exclusive(async () => {
      const toxic = parseToxicUpdate(body, this.getToxic(proxyName, toxicName));
      this.get(proxyName).putToxic(toxic);
      return toxic;
    });
  }

  removeToxic(proxyName: string, toxicName: string): Promise<void> {
    return this.exclusive(async () => {
      this.getToxic(proxyName, toxicName);
      this.get(proxyName).removeToxic(toxicName);
    });
  }

  /** Toxiproxy's reset: every proxy enabled, every toxic removed. */
  reset(): Promise<void> {
    return this.exclusive(async () => {
      for (const proxy of this.proxies.values()) {
        proxy.removeAllToxics();
        await proxy.setEnabled(true);
      }
    });
  }

  /** Closes every proxy; their ports are free when this resolves. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      const proxies = [...this.proxies.values()];
      this.proxies.clear();
      await Promise.all(proxies.map((proxy) => proxy.close()));
    });
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.tail.then(operation, operation);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
