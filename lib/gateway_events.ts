/**
 * What a program that embeds the gateway can listen to: the RabbitMQ link's
 * state and the number of connected clients. A listener that throws is logged
 * and never disturbs the gateway or the other listeners.
 *
 * @module
 */

import type { LinkState } from "./broker/link.ts";
import { logger } from "./log.ts";

const log = logger("gateway");

/** The events and what each listener is given. */
export interface GatewayEventMap {
  /** The RabbitMQ link changed state (`up`, `down`, `connecting`, `closed`). */
  broker: LinkState;
  /** The number of connected websocket clients changed. */
  clients: number;
}

/** Subscribes to an event; returns the function that unsubscribes. */
export type OnGatewayEvent = <K extends keyof GatewayEventMap>(
  event: K,
  listener: (value: GatewayEventMap[K]) => void,
) => () => void;

/** The listeners of one gateway. */
export class GatewayEvents {
  readonly #listeners: { [K in keyof GatewayEventMap]: Set<(value: GatewayEventMap[K]) => void> } = {
    broker: new Set(),
    clients: new Set(),
  };

  /** Adds a listener; the returned function removes it. */
  on: OnGatewayEvent = (event, listener) => {
    const set = this.#listeners[event] as Set<typeof listener>;
    set.add(listener);
    return () => set.delete(listener);
  };

  /** Tells every listener of `event`. */
  emit<K extends keyof GatewayEventMap>(event: K, value: GatewayEventMap[K]): void {
    for (const listener of this.#listeners[event]) {
      try {
        listener(value);
      } catch (err) {
        log.error("a {event} listener threw: {error}", {
          event,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }
}
