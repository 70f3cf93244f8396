/**
 * Runs the gateway as users do — a separate process started from `main.ts` or
 * from the bundle — with JSON logs on stderr that tests can await.
 *
 * @module
 */

import { until } from "./broker.ts";

/** One JSON log record of the gateway (LogTape's JSON lines, properties flattened). */
export type LogRecord = Record<string, unknown> & { level: string; message: string };

/** Options for {@linkcode startGateway}. */
export interface GatewayProcessOptions {
  /** The exchange to serve (use `uniqueExchange()`). */
  exchange: string;
  /** More command-line arguments. */
  args?: string[];
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** What to run: `main.ts` (default), or another file (relative to the repository, or absolute). */
  entry?: string;
  /** Wait for the RabbitMQ link to come up before resolving (default true). */
  waitForBroker?: boolean;
}

const ROOT = new URL("../../", import.meta.url);

/** A running gateway process. */
export class GatewayProcess {
  /** Every log record so far. */
  readonly logs: LogRecord[] = [];
  /** Lines of stderr that were not JSON (should be none). */
  readonly otherLines: string[] = [];
  /** The port it listens on (known once started). */
  port = 0;
  /** The gateway's client name. */
  name = "";
  readonly #child: Deno.ChildProcess;
  readonly #stderrDone: Promise<void>;
  #waiters: Array<() => void> = [];
  #status: Deno.CommandStatus | undefined;

  /** Spawns the process; use {@linkcode startGateway}. */
  constructor(options: GatewayProcessOptions) {
    const entry = options.entry?.startsWith("/")
      ? options.entry
      : new URL(options.entry ?? "main.ts", ROOT).pathname;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--quiet",
        entry,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-format",
        "json",
        "--log-level",
        "debug",
        "--exchange",
        options.exchange,
        ...(options.args ?? []),
      ],
      env: { CLU_WS_URL: "amqp://guest:guest@127.0.0.1:5672", ...options.env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#child.status.then((status) => {
      this.#status = status;
      this.#wake();
    });
    this.#stderrDone = this.#readLogs();
  }

  async #readLogs(): Promise<void> {
    let buffer = "";
    for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (!line.trim()) continue;
        try {
          this.logs.push(JSON.parse(line));
        } catch {
          this.otherLines.push(line);
        }
      }
      this.#wake();
    }
    if (buffer.trim()) this.otherLines.push(buffer);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Resident memory of the process now, in bytes (Linux). */
  rssBytes(): number {
    const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  }

  /** Peak resident memory of the process since start or {@linkcode resetPeakRss}, in bytes (Linux `VmHWM`). */
  peakRssBytes(): number {
    const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
    return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  }

  /** Resets the peak resident memory to the resident memory now (`clear_refs` 5, Linux). */
  resetPeakRss(): void {
    Deno.writeTextFileSync(`/proc/${this.pid}/clear_refs`, "5");
  }

  /** Open file descriptors of the process now (Linux): sockets, pipes, files. */
  openFds(): number {
    let count = 0;
    for (const _ of Deno.readDirSync(`/proc/${this.pid}/fd`)) count++;
    return count;
  }

  /** The exit status once it has exited. */
  get status(): Deno.CommandStatus | undefined {
    return this.#status;
  }

  /** Resolves with the first log record (past or future) that matches. */
  async waitForLog(
    what: string,
    match: (record: LogRecord) => boolean,
    { timeoutMs = 15_000, after = 0 } = {},
  ): Promise<LogRecord> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const found = this.logs.slice(after).find(match);
      if (found) return found;
      if (this.#status) {
        throw new Error(
          `gateway exited (${this.#status.code}) while waiting for ${what}; log:\n${this.dump()}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no log record for ${what} within ${timeoutMs} ms; log:\n${this.dump()}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** The last log lines, for failure messages. */
  dump(lines = 30): string {
    return [...this.otherLines, ...this.logs.slice(-lines).map((r) => `${r.level} ${r.message}`)].join("\n");
  }

  /** The websocket URL of the gateway, on `path`. */
  url(path = "/"): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** The HTTP URL of the gateway, on `path`. */
  httpUrl(path = "/"): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Sends a signal and waits for the exit; returns the status and how long it took. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<{ code: number; ms: number }> {
    const started = performance.now();
    if (!this.#status) {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
    }
    const status = await this.#child.status;
    const ms = performance.now() - started;
    await this.#stderrDone;
    return { code: status.code, ms };
  }

  /** Kills it if still running (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#status) await this.stop("SIGKILL");
    await this.#stderrDone;
  }
}

/**
 * Starts a gateway process and resolves once it listens (and, by default,
 * once its RabbitMQ link is up).
 */
export async function startGateway(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const gateway = new GatewayProcess(options);
  try {
    const listening = await gateway.waitForLog("listening", (r) => /listening on/.test(r.message));
    gateway.port = Number(listening.port);
    gateway.name = String(listening.name);
    if (options.waitForBroker ?? true) {
      await gateway.waitForLog("RabbitMQ link up", (r) => /RabbitMQ link up/.test(r.message));
    }
  } catch (err) {
    await gateway[Symbol.asyncDispose]();
    throw err;
  }
  return gateway;
}

/** Fetches `/healthz` until it reports `state` for the broker link. */
export function healthState(gateway: GatewayProcess, state: string): Promise<unknown> {
  return until(`/healthz broker=${state}`, async () => {
    const response = await fetch(gateway.httpUrl("/healthz"));
    const body = await response.json();
    return body.broker === state ? body : undefined;
  });
}
