/**
 * The gateway under test, as users run it: the bundle (`deno bundle main.ts`)
 * in its own `deno run` process with JSON logs, a unique exchange and name.
 * Its stderr is always drained (a full pipe would block its synchronous log
 * writes); the few records the harness waits for are kept.
 *
 * @module
 */

import { rssBytes } from "./proc.ts";

const ROOT = new URL("../", import.meta.url);

/** A TCP port that was free a moment ago (the gateway gets it with `--port`). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** One JSON log record of the gateway. */
export type LogRecord = Record<string, unknown> & { level: string; message: string };

/** Builds the bundle with the same command as `deno task bundle`, into `outFile`. */
export async function buildBundle(outFile: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "main.ts", "-o", outFile],
    cwd: ROOT.pathname,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`deno bundle main.ts failed:\n${new TextDecoder().decode(stderr)}`);
  }
}

/** Options for {@linkcode GatewayProcess.start}. */
export interface GatewayOptions {
  /** The bundle to run. */
  bundle: string;
  /** The RabbitMQ URL (passed as `CLU_WS_URL`). */
  amqpUrl: string;
  /** The exchange to serve, unique to this gateway. */
  exchange: string;
  /** The gateway's AMQP client name, unique to this gateway. */
  name: string;
  /** More gateway flags (e.g. `--command-rate 0`). */
  args?: string[];
  /** Write a V8 CPU profile into this directory when the gateway exits. */
  cpuProfDir?: string;
  /** Start the V8 inspector (to read the JS heap from outside). */
  inspect?: boolean;
  /** Wait for the RabbitMQ link (default true). */
  waitForBroker?: boolean;
}

/** When the gateway got where, in ms after the spawn. */
export interface StartupTimes {
  /** The "listening" log record arrived. */
  listening_ms: number;
  /** The "RabbitMQ link up" log record arrived (NaN if not awaited). */
  link_up_ms: number;
}

/** A running gateway process. */
export class GatewayProcess {
  /** Records the harness cares about (listening, link, warnings, errors). */
  readonly records: LogRecord[] = [];
  /** Log lines seen, by level. */
  readonly levels: Record<string, number> = {};
  /** Non-JSON stderr lines (the inspector's banner; anything else is a bug). */
  readonly otherLines: string[] = [];
  /** The websocket port. */
  port = 0;
  /** The inspector's websocket URL, when started with `inspect`. */
  inspectorUrl: string | undefined;
  /** When the process was spawned (`performance.now()`). */
  readonly spawnedAt: number;
  /** Startup milestones. */
  readonly times: StartupTimes = { listening_ms: NaN, link_up_ms: NaN };
  readonly #child: Deno.ChildProcess;
  readonly #stderrDone: Promise<void>;
  #waiters: Array<() => void> = [];
  #status: Deno.CommandStatus | undefined;

  private constructor(options: GatewayOptions, port: number) {
    this.port = port;
    // --quiet would also hide the inspector's banner, which says where it listens.
    const denoFlags = ["--allow-all", options.inspect ? "--inspect=127.0.0.1:0" : "--quiet"];
    if (options.cpuProfDir) denoFlags.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...denoFlags,
        options.bundle,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--log-format",
        "json",
        "--exchange",
        options.exchange,
        "--name",
        options.name,
        ...(options.args ?? []),
      ],
      env: { CLU_WS_URL: options.amqpUrl },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    });
    this.spawnedAt = performance.now();
    this.#child = command.spawn();
    this.#child.status.then((status) => {
      this.#status = status;
      this.#wake();
    });
    this.#stderrDone = this.#readLogs();
  }

  /**
   * Starts a gateway and resolves once it listens (and, by default, once its
   * RabbitMQ link is up). Readiness is seen in its log, or — for a gateway
   * that does not log it (e.g. `--log-level warning`) — by connecting to its
   * port and asking `/healthz`.
   */
  static async start(options: GatewayOptions): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(options, freePort());
    try {
      await gateway.#until("listening", async () => {
        if (gateway.records.some((r) => / listening on /.test(r.message))) return true;
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: gateway.port })).close();
          return true;
        } catch {
          return false;
        }
      });
      if (Number.isNaN(gateway.times.listening_ms)) {
        gateway.times.listening_ms = performance.now() - gateway.spawnedAt;
      }
      if (options.waitForBroker ?? true) await gateway.linkUp();
    } catch (err) {
      await gateway.stop("SIGKILL");
      throw err;
    }
    return gateway;
  }

  /** Resolves once the gateway's RabbitMQ link is up (its log says so, or `/healthz` does). */
  async linkUp(): Promise<void> {
    await this.#until("the RabbitMQ link", async () => {
      if (this.records.some((r) => /RabbitMQ link up/.test(r.message))) return true;
      if ((await this.health()).broker !== "up") return false;
      if (Number.isNaN(this.times.link_up_ms)) this.times.link_up_ms = performance.now() - this.spawnedAt;
      return true;
    });
  }

  /** Polls `ready` every 10 ms until it holds; throws if the gateway exits or 15 s pass. */
  async #until(what: string, ready: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await ready())) {
      if (this.#status) {
        await this.#stderrDone;
        throw new Error(`gateway exited (${this.#status.code}) while waiting for ${what}:\n${this.dump()}`);
      }
      if (performance.now() > deadline) {
        throw new Error(`gateway: no ${what} within ${timeoutMs} ms:\n${this.dump()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async #readLogs(): Promise<void> {
    let buffer = "";
    for await (const chunk of this.#child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        this.#line(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      this.#wake();
    }
    if (buffer.trim()) this.#line(buffer);
    this.#wake();
  }

  #line(line: string): void {
    if (!line.trim()) return;
    if (!line.startsWith("{")) {
      const inspector = /Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (inspector) this.inspectorUrl = inspector[1];
      else if (!line.startsWith("Visit chrome://")) this.otherLines.push(line);
      return;
    }
    // Per-client and per-command INFO lines are many; count them without parsing.
    const level = /"level":"([A-Z]+)"/.exec(line)?.[1] ?? "?";
    this.levels[level] = (this.levels[level] ?? 0) + 1;
    if (level === "INFO" && !/ listening on |RabbitMQ link/.test(line)) return;
    try {
      const record = JSON.parse(line) as LogRecord;
      const at = performance.now() - this.spawnedAt;
      if (/ listening on /.test(record.message) && Number.isNaN(this.times.listening_ms)) {
        this.times.listening_ms = at;
      }
      if (/RabbitMQ link up/.test(record.message) && Number.isNaN(this.times.link_up_ms)) {
        this.times.link_up_ms = at;
      }
      if (this.records.length < 1000) this.records.push(record);
    } catch {
      this.otherLines.push(line);
    }
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

  /** Resident memory now, bytes. */
  rss(): number {
    return rssBytes(this.pid);
  }

  /** The websocket URL. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  /** Records whose message matches `pattern`. */
  matching(pattern: RegExp): LogRecord[] {
    return this.records.filter((r) => pattern.test(r.message));
  }

  /** Resolves with the first kept log record that matches. */
  async waitForLog(
    what: string,
    match: (record: LogRecord) => boolean,
    timeoutMs = 15_000,
  ): Promise<LogRecord> {
    const deadline = performance.now() + timeoutMs;
    while (true) {
      const found = this.records.find(match);
      if (found) return found;
      if (this.#status) {
        // The exit can be seen before the last of stderr: read it all before giving up.
        await this.#stderrDone;
        const late = this.records.find(match);
        if (late) return late;
        throw new Error(`gateway exited (${this.#status.code}) while waiting for ${what}:\n${this.dump()}`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`gateway: no ${what} within ${timeoutMs} ms:\n${this.dump()}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** The last records, for error messages. */
  dump(lines = 20): string {
    return [...this.otherLines.slice(-5), ...this.records.slice(-lines).map((r) => `${r.level} ${r.message}`)]
      .join("\n");
  }

  /** The gateway's `/healthz` body (empty for a gateway without one, e.g. bench/naive_gateway.ts). */
  async health(): Promise<Record<string, unknown>> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.port}/healthz`);
      const text = await response.text();
      return JSON.parse(text);
    } catch {
      return {};
    }
  }

  /**
   * The JS heap as V8 sees it after a full GC, through the inspector (only
   * when started with `inspect`): used and total bytes.
   */
  async heap(): Promise<{ used: number; total: number }> {
    if (!this.inspectorUrl) throw new Error("the gateway was not started with the inspector");
    const socket = new WebSocket(this.inspectorUrl);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`cannot reach the inspector at ${this.inspectorUrl}`));
    });
    let id = 0;
    const pending = new Map<number, (result: Record<string, unknown>) => void>();
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (typeof message.id === "number") pending.get(message.id)?.(message.result ?? {});
    };
    function call(method: string): Promise<Record<string, unknown>> {
      const callId = ++id;
      socket.send(JSON.stringify({ id: callId, method }));
      return new Promise((resolve) => pending.set(callId, resolve));
    }
    try {
      await call("HeapProfiler.collectGarbage");
      const usage = await call("Runtime.getHeapUsage");
      return { used: Number(usage.usedSize), total: Number(usage.totalSize) };
    } finally {
      socket.close();
    }
  }

  /** Stops the gateway (SIGTERM, as systemd does) and waits for it and its log. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    if (!this.#status) {
      try {
        this.#child.kill(signal);
      } catch {
        // Already gone.
      }
    }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 10_000);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#stderrDone;
    return status.code;
  }

  /** Kills the gateway if it still runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#status) await this.stop("SIGKILL");
  }
}
