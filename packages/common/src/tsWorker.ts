import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread running the TypeScript module at `moduleUrl`. Under Node 20 a worker does
 * not inherit tsx's loader when the parent registered it through the API, so the worker registers
 * it first and then imports the module.
 */
export function startTsWorker(moduleUrl: URL | string, options: Omit<WorkerOptions, 'eval'> = {}): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(String(moduleUrl))}); });`;
  return new Worker(source, { ...options, eval: true });
}
