/**
 * The `/healthz` document: 200 while the broker link is up, 503 otherwise,
 * with what an operator or a load balancer looks at first. Pure: the caller
 * hands in the figures of the moment.
 *
 * @module
 */

import type { GatewayIdentity } from "../protocol/clu.ts";
import type { Health } from "./server.ts";
import type { LinkState } from "../broker/link.ts";
import { VERSION } from "../version.ts";

/** The figures `/healthz` reports. */
export interface HealthInputs {
  /** The broker link now. */
  broker: {
    /** Its state. */
    readonly state: LinkState;
    /** The node it is on, or undefined when down. */
    readonly node: string | undefined;
    /** Why the broker blocks publishes, or undefined. */
    readonly blockedReason: string | undefined;
  };
  /** The reply path now. */
  replies: {
    /** This run's epoch. */
    readonly epoch: string;
    /** The seq of the last reply delivered. */
    readonly latestSeq: number;
  };
  /** Which gateway this is. */
  identity: GatewayIdentity;
  /** Clients connected now. */
  clients: number;
  /** When the gateway started (ms since the epoch). */
  startedAt: number;
  /** Now (ms since the epoch); default `Date.now()`. */
  now?: number;
}

/** The health status and JSON body for these figures. */
export function healthReport(inputs: HealthInputs): Health {
  const { broker, replies, identity } = inputs;
  const up = broker.state === "up";
  return {
    status: up ? 200 : 503,
    body: {
      status: up ? "ok" : "broker link down",
      broker: broker.state,
      node: broker.node ?? null,
      blocked: broker.blockedReason ?? null,
      uptime_s: Math.round(((inputs.now ?? Date.now()) - inputs.startedAt) / 1000),
      clients: inputs.clients,
      version: VERSION,
      name: identity.name,
      exchange: identity.exchange,
      epoch: replies.epoch,
      seq: replies.latestSeq,
    },
  };
}
