import { spawn, type ChildProcess } from 'node:child_process';

export const REPO = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
export const CLI = `${REPO}/packages/cli/bin/hbft.js`;

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Both streams, for failure messages. */
  output: string;
}

/**
 * Runs a command to its end without blocking the event loop (a test that also hosts child
 * daemons must keep reading their pipes, or they stall writing logs). Never throws on a non-zero
 * exit: the caller asserts on `code` and shows `output`.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {},
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      output += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
      output += chunk;
    });
    const timer = setTimeout(() => {
      output += `\n(killed after ${options.timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, output });
    });
  });
}

/** scripts/NAME with arguments and extra environment. */
export function runScript(name: string, args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<ScriptResult> {
  return runCommand('bash', [`${REPO}/scripts/${name}`, ...args], { env, timeoutMs });
}

/**
 * Ctrl-C to a demo started detached (its own process group): the terminal signals the whole
 * foreground group, and `npm start` passes it on again. True if it exited within `timeoutMs`.
 */
export async function interruptDemo(demo: ChildProcess, exited: Promise<unknown>, timeoutMs = 60_000): Promise<boolean> {
  process.kill(-demo.pid!, 'SIGINT');
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (demo.exitCode === null) process.kill(-demo.pid!, 'SIGINT');
  return Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs))]);
}
