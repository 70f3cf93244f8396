/**
 * Memory back after a surge of connections. Accepting a websocket leaves a few
 * KiB of garbage behind it (the HTTP request, its headers, the handshake),
 * and V8 collects its heap only when more allocation asks for it: an idle
 * gateway that has just taken 10,000 connections (every browser of an
 * observatory reconnecting after a network blip) keeps that garbage, about as
 * much again as the connections themselves hold, for as long as it stays
 * quiet. So once a surge is over (at least {@linkcode SurgeOptions.minConnections}
 * new connections, then none for {@linkcode SurgeOptions.quietMs}) the
 * gateway runs one full collection, which hands the memory back to the
 * system. It costs a pause of tens of milliseconds, once, when little happens.
 *
 * The collector is V8's `gc`, exposed with the `--expose-gc` flag set at run
 * time; only the command-line program does this (an embedding program's
 * flags are its own).
 *
 * @module
 */

import v8 from "node:v8";
import vm from "node:vm";

/** Options for {@linkcode SurgeCollector}. */
export interface SurgeOptions {
  /** New connections that make a surge worth a collection. */
  minConnections: number;
  /** How long without a new connection ends the surge (ms). */
  quietMs: number;
  /** Runs a full garbage collection. */
  collect: () => void;
}

/** Watches the number of connected clients and collects garbage once after each surge of new ones. */
export class SurgeCollector {
  readonly #options: SurgeOptions;
  #last = 0;
  #newSince = 0;
  #lastConnectAt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #collections = 0;

  /** A collector that does nothing until told of clients. */
  constructor(options: SurgeOptions) {
    this.#options = options;
  }

  /** Full collections run so far. */
  get collections(): number {
    return this.#collections;
  }

  /** The number of connected clients changed to `count`. */
  clients(count: number): void {
    const added = count - this.#last;
    this.#last = count;
    if (added <= 0) return;
    this.#newSince += added;
    this.#lastConnectAt = performance.now();
    if (this.#newSince >= this.#options.minConnections && this.#timer === undefined) {
      this.#arm(this.#options.quietMs);
    }
  }

  /** Stops watching (no collection pending). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    const timer = setTimeout(() => this.#check(), delayMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #check(): void {
    this.#timer = undefined;
    const quietFor = performance.now() - this.#lastConnectAt;
    if (quietFor < this.#options.quietMs) {
      this.#arm(this.#options.quietMs - quietFor);
      return;
    }
    this.#newSince = 0;
    this.#collections++;
    this.#options.collect();
  }
}

/**
 * V8's full garbage collection, made available by setting `--expose-gc` now;
 * undefined when the runtime does not allow it (nothing is collected then).
 */
export function exposeGarbageCollector(): (() => void) | undefined {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? () => gc() : undefined;
  } catch {
    return undefined;
  }
}
