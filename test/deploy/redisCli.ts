import { spawn, type ChildProcess } from 'node:child_process';
import { runCommand } from './runScript.ts';

/**
 * Debian's redis-cli as a person at a prompt uses it: one process, one connection kept open,
 * a command written on a line and its reply read back (with stdin not a terminal redis-cli
 * prints raw replies, one line each). Were its connection lost, redis-cli would print an error and
 * connect again for the next command; `connections()` tells whether it kept the same one.
 */
export class InteractiveRedisCli {
  private readonly child: ChildProcess;
  private buffered = '';
  private readonly waiting: ((line: string) => void)[] = [];
  transcript = '';

  /** `argv` runs redis-cli (e.g. `ip netns exec NS redis-cli -h HOST`). */
  constructor(argv: string[]) {
    const [command, ...args] = argv;
    this.child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer) => {
      this.transcript += chunk;
      this.buffered += chunk;
      let newline = this.buffered.indexOf('\n');
      while (newline >= 0 && this.waiting.length > 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        this.waiting.shift()!(line);
        newline = this.buffered.indexOf('\n');
      }
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends one command line and resolves with the next line of output (the reply, or an error). */
  send(line: string, timeoutMs = 30_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply to "${line}" within ${timeoutMs} ms; transcript:\n${this.transcript}`)),
        timeoutMs,
      );
      this.waiting.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      // A line already buffered answers at once.
      this.child.stdout!.emit('data', Buffer.alloc(0));
      this.child.stdin!.write(`${line}\n`);
    });
  }

  /** "LOCAL PEER" of each TCP connection this redis-cli has (`ss` run by `inNamespace`). */
  async connections(inNamespace: (argv: string[]) => string[] = (argv) => argv): Promise<string[]> {
    const [command, ...args] = inNamespace(['ss', '-tnpH']);
    const listed = await runCommand(command!, args);
    return listed.stdout
      .split('\n')
      .filter((line) => line.includes(`pid=${this.pid},`))
      .map((line) => line.trim().split(/\s+/).slice(3, 5).join(' '));
  }

  close(): void {
    this.child.stdin!.end();
    this.child.kill('SIGTERM');
  }
}
