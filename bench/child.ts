/**
 * The harness's handle on a load-generator child process (bench/clients.ts,
 * bench/ceiling.ts): a Deno script that takes its job as one JSON argument,
 * prints one JSON object per line on stdout (`{"event": ...}`), and reads
 * one-word orders (`stop`) on stdin.
 *
 * @module
 */

/** One JSON line from a child. */
export type ChildEvent = Record<string, unknown> & { event: string };

const BENCH_DIR = new URL("./", import.meta.url);

/** A running child script. */
export class Child {
  /** Every event so far. */
  readonly events: ChildEvent[] = [];
  readonly #process: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reading: Promise<void>;
  readonly #label: string;
  #waiters: Array<() => void> = [];
  #exited = false;
  #stderrTail: string[] = [];

  /** Starts `script` (a file in bench/) with `job` as its argument. */
  constructor(script: string, job: unknown, { v8Flags = [] as string[] } = {}) {
    this.#label = script;
    this.#process = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        ...(v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : []),
        new URL(script, BENCH_DIR).pathname,
        JSON.stringify(job),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#process.stdin.getWriter();
    this.#reading = Promise.all([this.#readEvents(), this.#readStderr()]).then(() => {});
    this.#process.status.then(() => {
      this.#exited = true;
      this.#wake();
    });
  }

  /** The child's process id. */
  get pid(): number {
    return this.#process.pid;
  }

  async #readEvents(): Promise<void> {
    let buffer = "";
    for await (const chunk of this.#process.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.#stderrTail.push(`stdout: ${line}`);
        }
      }
      this.#wake();
    }
  }

  async #readStderr(): Promise<void> {
    for await (const chunk of this.#process.stderr.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n")) {
        if (line.trim()) this.#stderrTail.push(line);
      }
      if (this.#stderrTail.length > 40) this.#stderrTail = this.#stderrTail.slice(-40);
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves with the first event named `name`; throws if the child exits first or time runs out. */
  async waitFor(name: string, { timeoutMs = 60_000 } = {}): Promise<ChildEvent> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const found = this.events.find((e) => e.event === name);
      if (found) return found;
      const failed = this.events.find((e) => e.event === "error");
      if (failed) throw new Error(`${this.#label}: ${failed.message}`);
      if (this.#exited) {
        await this.#reading;
        const again = this.events.find((e) => e.event === name);
        if (again) return again;
        throw new Error(`${this.#label} exited before "${name}":\n${this.#stderrTail.join("\n")}`);
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `${this.#label}: no "${name}" within ${timeoutMs} ms:\n${this.#stderrTail.join("\n")}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, Math.min(left, 1000));
      });
      clearTimeout(timer);
    }
  }

  /** Sends a one-line order to the child (e.g. `stop`). */
  async tell(order: string): Promise<void> {
    if (this.#exited) return;
    await this.#writer.write(new TextEncoder().encode(`${order}\n`)).catch(() => {});
  }

  /** Sends a signal to the child. */
  signal(signal: Deno.Signal): void {
    try {
      this.#process.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Ends the child (SIGKILL if it does not leave within `graceMs` of closing its stdin). */
  async close({ graceMs = 2000 } = {}): Promise<void> {
    await this.#writer.close().catch(() => {});
    const timer = setTimeout(() => {
      this.signal("SIGCONT");
      this.signal("SIGKILL");
    }, graceMs);
    await this.#process.status;
    clearTimeout(timer);
    await this.#reading.catch(() => {});
  }

  /** Kills the child if it is still running. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close({ graceMs: 0 });
  }
}
