/**
 * A websocket client in its own process, for tests that must freeze a real
 * client (SIGSTOP) so that it stops reading, then thaw it (SIGCONT). The child
 * prints one line per frame received on stdout: the frame as sent; then
 * `close <code> <reason>`.
 *
 * @module
 */

/** The parent's handle on a child-process client. */
export class ChildClient {
  /** Every line the child printed (frames, then the close line). */
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  #waiters: Array<() => void> = [];

  private constructor(url: string, denoArgs: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--quiet", ...denoArgs, new URL(import.meta.url).pathname, url],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#reading = this.#read();
  }

  /** Starts a child client on `url` and resolves once its socket is open (`denoArgs` e.g. `--cert ca.pem`). */
  static async open(url: string, { denoArgs = [] as string[] } = {}): Promise<ChildClient> {
    const client = new ChildClient(url, denoArgs);
    await client.waitFor("open", (line) => line === "open");
    return client;
  }

  /** Starts a child client that is expected to fail; resolves with its output lines once it exits. */
  static async failing(url: string, { denoArgs = [] as string[] } = {}): Promise<string[]> {
    await using client = new ChildClient(url, denoArgs);
    await client.#reading;
    return client.lines;
  }

  async #read(): Promise<void> {
    let buffer = "";
    for await (const chunk of this.#child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        this.lines.push(buffer.slice(0, newline));
        buffer = buffer.slice(newline + 1);
      }
      this.#wake();
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Waits for a line that matches, for at most `timeoutMs`. */
  async waitFor(
    what: string,
    match: (line: string) => boolean,
    { timeoutMs = 20_000 } = {},
  ): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.#reading.then(() => exited = true);
    while (true) {
      const found = this.lines.find(match);
      if (found !== undefined) return found;
      if (exited) throw new Error(`child client exited while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `child client: no ${what} within ${timeoutMs} ms; last: ${this.lines.slice(-3).join(" | ")}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }

  /** Freezes the child: it stops reading its socket. */
  freeze(): void {
    this.#child.kill("SIGSTOP");
  }

  /** Lets a frozen child run again. */
  thaw(): void {
    this.#child.kill("SIGCONT");
  }

  /** Ends the child and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGCONT");
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#reading;
  }
}

if (import.meta.main) {
  const socket = new WebSocket(Deno.args[0]);
  const encoder = new TextEncoder();
  const print = (text: string) => {
    const bytes = encoder.encode(`${text}\n`);
    let written = 0;
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  };
  socket.onopen = () => print("open");
  socket.onmessage = (event) => print(String(event.data));
  socket.onerror = (event) => print(`error ${(event as ErrorEvent).message ?? ""}`);
  socket.onclose = (event) => {
    print(`close ${event.code} ${event.reason}`);
    Deno.exit(0);
  };
}
