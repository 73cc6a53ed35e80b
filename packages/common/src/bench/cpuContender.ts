import { parentPort, workerData, type Worker } from 'node:worker_threads';
import { assert, HbftError } from '../errors.ts';
import type { CpuEngine } from '../guest/cpu.ts';
import type { MachineOptions } from '../guest/machine.ts';
import { startTsWorker } from '../tsWorker.ts';

/**
 * One contender of the CPU benchmark (bench/cpu.ts) on a thread of its own. A fresh thread is a
 * fresh V8 isolate, so what an engine's code was optimised for depends on nothing but its own
 * runs: in one isolate, the same interpreter measured 0.80–0.92× of an identical copy of itself
 * when its class had run the block-engine warm-up and the copy's had not (the engines of one
 * revision share `Cpu.interpret`). The threads take turns; only one runs at a time.
 *
 * Each thread loads the image and runs the same number of instructions before its turns, so
 * every contender starts at the same point of the program. It does not start from a copy of
 * another machine's state: a baseline revision may not read this revision's state format.
 */
export interface ContenderJob {
  /** The `guest/machine.ts` to import: this revision's or a baseline's. */
  machineModuleUrl: string;
  engine: CpuEngine;
  memoryBytes: number;
  args: string;
  /** The ELF image and its name, as `Machine.loadElf` takes them. */
  image: Uint8Array;
  imageName: string;
  /** Instructions run before the turns, past the program's start-up (not timed). */
  warmupInstructions: number;
  sliceInstructions: number;
  /** Wall time run before the first measured turn, so that V8 compiles the hot code. */
  warmupSeconds: number;
}

/** What the benchmark needs of a machine: this revision's Machine, or a baseline's. */
export interface BenchMachine {
  readonly memory: { readonly u8: Uint8Array };
  readonly halted: boolean;
  readonly exit: unknown;
  loadElf(bytes: Uint8Array, name?: string): unknown;
  run(budget: number): { executed: number };
}

export interface Turn {
  instructions: number;
  /** Wall time of the turn. */
  seconds: number;
  /**
   * CPU time the process spent in the turn (user + system, all threads: while a contender runs,
   * the others and the main thread wait for a message). Other processes' load on the machine
   * stretches the wall time but not this, so the benchmark's MIPS are per CPU second.
   */
  cpuSeconds: number;
}

/** Runs `machine` for about `seconds` of wall time; returns the instructions executed and the time taken. */
export function runFor(machine: BenchMachine, seconds: number, sliceInstructions: number): Turn {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const deadline = started + seconds * 1000;
  let instructions = 0;
  let now = started;
  while (now < deadline) {
    const result = machine.run(sliceInstructions);
    instructions += result.executed;
    assert(!machine.halted, `the benchmark workload ended (${JSON.stringify(machine.exit)}); give it more rounds`);
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpuStarted);
  return { instructions, seconds: (now - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

type Request = { turnSeconds: number } | { stop: true };
type Reply = { ok: true; turn: Turn } | { ok: false; message: string };

/** A contender's thread, ready for turns once `start` resolves. */
export class ContenderThread {
  private constructor(
    private readonly worker: Worker,
    private readonly name: string,
  ) {}

  /** Starts the thread; resolves when it has restored the state and run its warm-up. */
  static async start(name: string, job: ContenderJob): Promise<ContenderThread> {
    const thread = new ContenderThread(startTsWorker(import.meta.url, { workerData: job }), name);
    await thread.reply();
    return thread;
  }

  /** One measured turn of about `seconds`. */
  async turn(seconds: number): Promise<Turn> {
    this.worker.postMessage({ turnSeconds: seconds } satisfies Request);
    return this.reply();
  }

  async stop(): Promise<void> {
    this.worker.postMessage({ stop: true } satisfies Request);
    await this.worker.terminate();
  }

  private reply(): Promise<Turn> {
    return new Promise((resolve, reject) => {
      const onMessage = (reply: Reply): void => {
        cleanUp();
        if (reply.ok) resolve(reply.turn);
        else reject(new HbftError('E_BENCH_CONTENDER', `${this.name}: ${reply.message}`));
      };
      const onError = (error: Error): void => {
        cleanUp();
        reject(error);
      };
      const onExit = (code: number): void => {
        cleanUp();
        reject(new HbftError('E_BENCH_CONTENDER', `${this.name}: the measuring thread exited with code ${code} before replying`));
      };
      const cleanUp = (): void => {
        this.worker.off('message', onMessage);
        this.worker.off('error', onError);
        this.worker.off('exit', onExit);
      };
      this.worker.on('message', onMessage);
      this.worker.on('error', onError);
      this.worker.on('exit', onExit);
    });
  }
}

/** The thread's side: load, run past start-up, warm up, then one turn per request. */
async function serve(job: ContenderJob): Promise<void> {
  const port = parentPort;
  assert(port !== null, 'a contender runs on a worker thread');
  const fail = (error: unknown): void => port.postMessage({ ok: false, message: (error as Error).message } satisfies Reply);
  let machine: BenchMachine;
  try {
    const module = (await import(job.machineModuleUrl)) as { Machine: new (options: MachineOptions) => BenchMachine };
    machine = new module.Machine({ memoryBytes: job.memoryBytes, args: job.args, engine: job.engine });
    machine.loadElf(job.image, job.imageName);
    for (let done = 0; done < job.warmupInstructions; ) {
      done += machine.run(Math.min(job.sliceInstructions, job.warmupInstructions - done)).executed;
      assert(!machine.halted, `the benchmark workload ended during its ${job.warmupInstructions} warm-up instructions`);
    }
    port.postMessage({ ok: true, turn: runFor(machine, job.warmupSeconds, job.sliceInstructions) } satisfies Reply);
  } catch (error) {
    fail(error);
    return;
  }
  port.on('message', (request: Request) => {
    if ('stop' in request) {
      port.close();
      return;
    }
    try {
      port.postMessage({ ok: true, turn: runFor(machine, request.turnSeconds, job.sliceInstructions) } satisfies Reply);
    } catch (error) {
      fail(error);
    }
  });
}

if (parentPort !== null && typeof (workerData as ContenderJob | undefined)?.machineModuleUrl === 'string') {
  void serve(workerData as ContenderJob);
}
