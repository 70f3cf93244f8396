/**
 * Prometheus metrics through prom-client. Hot-path counts (frames, bytes)
 * stay plain numbers in the hub and are read at scrape time, so delivering a
 * frame costs no metrics work; per-reply and per-command events are counted
 * here.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CommandOutcome } from "../commands/lifecycle.ts";

/** Live values read when Prometheus scrapes. */
export interface MetricSources {
  /** Connected clients. */
  clients(): number;
  /** Frames handed to sockets. */
  framesSent(): number;
  /** Bytes (UTF-16 code units ≈ bytes for ASCII JSON) handed to sockets. */
  bytesSent(): number;
  /** Clients closed for being too slow. */
  slowCloses(): number;
  /** Frames skipped for lagging clients. */
  framesSkipped(): number;
  /** Broker reconnects after a loss. */
  reconnects(): number;
  /** 1 when the broker link is up. */
  linkUp(): number;
  /** 1 when the broker blocks publishes. */
  blocked(): number;
  /** The broker node the link is on (`host:port`), or undefined when down. */
  node(): string | undefined;
}

/** The gateway's metrics registry. */
export class Metrics {
  /** The registry `/metrics` renders. */
  readonly #registry: Registry = new Registry();
  /** Hot-path counts as plain numbers, handed to prom-client at scrape time (a labelled `inc` hashes its labels). */
  readonly #counts = { forwarded: 0, dropped: 0, received: 0 };
  readonly #outcomes = new Map<CommandOutcome, number>();
  readonly #latency: Histogram;
  readonly #lagTimer: ReturnType<typeof setInterval>;
  #lagSeconds = 0;

  /** Registers every metric; `sources` are read at scrape time. */
  constructor(sources: MetricSources) {
    const registers = [this.#registry];
    const fromSource = (name: string, help: string, read: () => number, type: "counter" | "gauge") => {
      if (type === "gauge") {
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read());
          },
        });
      } else {
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset();
            this.inc(read());
          },
        });
      }
    };
    fromSource("cluws_clients", "Websocket clients connected now.", sources.clients, "gauge");
    fromSource("cluws_frames_sent_total", "Frames sent to websocket clients.", sources.framesSent, "counter");
    fromSource(
      "cluws_bytes_sent_total",
      "Characters of frames sent to websocket clients (bytes, for ASCII JSON).",
      sources.bytesSent,
      "counter",
    );
    fromSource(
      "cluws_slow_client_closes_total",
      "Clients closed for having too much unsent data.",
      sources.slowCloses,
      "counter",
    );
    fromSource(
      "cluws_frames_skipped_total",
      "Frames skipped for lagging clients (--slow-client drop).",
      sources.framesSkipped,
      "counter",
    );
    fromSource(
      "cluws_broker_reconnects_total",
      "Times the RabbitMQ link came back after a loss.",
      sources.reconnects,
      "counter",
    );
    fromSource("cluws_broker_link_up", "1 when the RabbitMQ link is up.", sources.linkUp, "gauge");
    fromSource(
      "cluws_broker_blocked",
      "1 when RabbitMQ blocks publishes (resource alarm).",
      sources.blocked,
      "gauge",
    );
    new Gauge({
      name: "cluws_broker_node",
      help: "1 for the RabbitMQ node (host:port) the link is on; absent while the link is down.",
      labelNames: ["node"],
      registers,
      collect() {
        this.reset();
        const node = sources.node();
        if (node !== undefined) this.set({ node }, 1);
      },
    });
    const counts = this.#counts;
    const outcomes = this.#outcomes;
    new Counter({
      name: "cluws_replies_received_total",
      help: "Replies consumed from RabbitMQ, by result (forwarded or dropped as invalid).",
      labelNames: ["result"],
      registers,
      collect() {
        this.reset();
        this.inc({ result: "forwarded" }, counts.forwarded);
        this.inc({ result: "dropped" }, counts.dropped);
      },
    });
    new Counter({
      name: "cluws_commands_received_total",
      help: "Valid commands received from websocket clients and POST /commands.",
      registers,
      collect() {
        this.reset();
        this.inc(counts.received);
      },
    });
    new Counter({
      name: "cluws_commands_total",
      help: "Commands by outcome: published, unroutable, failed, denied, rate_limited.",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of outcomes) this.inc({ outcome }, count);
      },
    });
    this.#latency = new Histogram({
      name: "cluws_reply_latency_seconds",
      help: "Broker timestamp (whole seconds, as CLU stamps it) to the frame being sent to clients.",
      buckets: [0.5, 1, 1.5, 2, 5, 10, 30],
      registers,
    });
    const takeLag = () => {
      const lag = this.#lagSeconds;
      this.#lagSeconds = 0;
      return lag;
    };
    new Gauge({
      name: "cluws_event_loop_lag_seconds",
      help: "Largest delay of a 250 ms timer over the last scrape interval.",
      registers,
      collect() {
        this.set(takeLag());
      },
    });
    let expected = performance.now() + 250;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      this.#lagSeconds = Math.max(this.#lagSeconds, Math.max(0, now - expected) / 1000);
      expected = now + 250;
    }, 250);
    Deno.unrefTimer(this.#lagTimer);
    for (const outcome of ["published", "unroutable", "failed", "denied", "rate_limited"] as const) {
      outcomes.set(outcome, 0);
    }
  }

  /** Counts a reply; `timestamp` (seconds) feeds the latency histogram when present. */
  reply(forwarded: boolean, timestamp?: number): void {
    if (forwarded) this.#counts.forwarded++;
    else this.#counts.dropped++;
    if (forwarded && timestamp !== undefined) {
      this.#latency.observe(Math.max(0, Date.now() / 1000 - timestamp));
    }
  }

  /** Counts a valid command received from a client. */
  commandReceived(): void {
    this.#counts.received++;
  }

  /** Counts how a command ended. */
  command(outcome: CommandOutcome): void {
    this.#outcomes.set(outcome, (this.#outcomes.get(outcome) ?? 0) + 1);
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.#registry.metrics();
  }

  /** The content type of {@linkcode Metrics.render}. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** Stops the lag sampler. */
  close(): void {
    clearInterval(this.#lagTimer);
  }
}
