/**
 * A TCP fault proxy between the gateway and RabbitMQ that a test can take
 * down (refusing and cutting connections), stall (connections stay open but
 * no byte moves, as with a dead network path) and bring back on the same port.
 *
 * @module
 */

/** A proxy on 127.0.0.1 forwarding to a target port. */
export class TcpProxy {
  /** The port the proxy owns, whether or not it is listening now. */
  readonly port: number;
  #targetPort: number;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  readonly #connections = new Set<Deno.Conn>();
  readonly #pipes = new Set<Promise<void>>();
  #stalled: PromiseWithResolvers<void> | undefined;
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(port: number, targetPort: number) {
    this.port = port;
    this.#targetPort = targetPort;
  }

  /**
   * Reserves a free port for a proxy to `targetPort`; it listens only once
   * {@linkcode TcpProxy.up} is called, so a client pointed at it meets a
   * broker that is down.
   */
  static reserve(targetPort = 5672): TcpProxy {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = probe.addr as Deno.NetAddr;
    probe.close();
    return new TcpProxy(port, targetPort);
  }

  /** Starts listening and forwarding. */
  up(): void {
    if (this.#listener) return;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) this.#forward(conn);
      } catch {
        // Listener closed.
      }
    })();
  }

  /** Sends the connections accepted from now on to `targetPort` (a load balancer moving to another backend). */
  retarget(targetPort: number): void {
    this.#targetPort = targetPort;
  }

  /** Open connections (each side counts). */
  get connections(): number {
    return this.#connections.size;
  }

  /** Holds every byte in both directions until {@linkcode TcpProxy.resume}; connections stay open. */
  stall(): void {
    this.#stalled ??= Promise.withResolvers<void>();
  }

  /** Lets bytes flow again after {@linkcode TcpProxy.stall}. */
  resume(): void {
    this.#stalled?.resolve();
    this.#stalled = undefined;
  }

  async #pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await from.read(buffer);
      if (n === null) return;
      while (this.#stalled) await this.#stalled.promise;
      let written = 0;
      while (written < n) written += await to.write(buffer.subarray(written, n));
    }
  }

  #forward(inbound: Deno.Conn): void {
    this.accepted++;
    this.#connections.add(inbound);
    const pipe = (async () => {
      let outbound: Deno.Conn | undefined;
      try {
        outbound = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
        this.#connections.add(outbound);
        await Promise.race([
          this.#pump(inbound, outbound).catch(() => {}),
          this.#pump(outbound, inbound).catch(() => {}),
        ]);
      } catch {
        // Target down, or a side was cut.
      } finally {
        for (const conn of [inbound, outbound]) {
          if (!conn) continue;
          this.#connections.delete(conn);
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
      }
    })();
    this.#pipes.add(pipe);
    pipe.finally(() => this.#pipes.delete(pipe));
  }

  /** Stops listening and cuts every open connection, as a dead broker would. */
  async down(): Promise<void> {
    this.resume();
    this.#listener?.close();
    this.#listener = undefined;
    await this.#accepting;
    for (const conn of this.#connections) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    this.#connections.clear();
    await Promise.allSettled([...this.#pipes]);
  }

  /** Takes the proxy down for good (for `await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }
}
