/**
 * The client's own public types: a CLU reply frame as the client receives
 * it, the connection's states, the events it emits and its options. The v1
 * control frames are typed in `lib/protocol/v1.ts`.
 *
 * @module
 */

import type { Subscription, Welcome } from "../../lib/protocol/v1.ts";

/** A CLU reply frame (with `seq` in v1; gateway-made `e`/`f` frames have none). */
export interface Frame {
  /** Position in the gateway's epoch; absent on frames the gateway made for this client. */
  seq?: number;
  /** AMQP headers: message_code, sender, command_id, commander_id, internal, … */
  headers: {
    message_code: string;
    sender?: string;
    command_id?: string | number | null;
    commander_id?: string | null;
    internal?: boolean;
    [key: string]: unknown;
  };
  /** The exchange. */
  exchange: string;
  /** The AMQP message id, or null. */
  message_id: string | null;
  /** The routing key. */
  routing_key: string;
  /** ISO 8601 with offset, or null. */
  timestamp: string | null;
  /** The reply's body. */
  body: Record<string, unknown>;
}

/** Connection states reported to `connection` listeners. */
export type ConnectionState = "connecting" | "open" | "closed";

/** What a `gap` listener is told: replies were missed and cannot be replayed. */
export interface GapInfo {
  /** Why. */
  reason: string;
  /** The gateway's epoch now. */
  epoch: string;
}

/** Options for {@linkcode CluClient}. */
export interface ClientOptions {
  /** Access token, when the gateway uses them. */
  token?: string;
  /** Reconnect after a loss (default true). */
  reconnect?: boolean;
  /** First reconnect delay (default 500 ms); doubles up to `maxDelayMs`. */
  minDelayMs?: number;
  /** Longest reconnect delay (default 30 s). */
  maxDelayMs?: number;
  /** The initial subscription. */
  subscribe?: Subscription;
  /** Default command timeout in seconds (default 30). */
  commandTimeout?: number;
  /** Ask for batched delivery (arrays of replies; fewer messages at high rates). */
  batch?: boolean;
}

/** The events of {@linkcode CluClient.on} and what each listener is given. */
export interface Events {
  /** A CLU reply (live or replayed), once. */
  reply: Frame;
  /** The connection's state changed. */
  connection: ConnectionState;
  /** The gateway's RabbitMQ link state. */
  broker: string;
  /** Replies were missed and cannot be replayed. */
  gap: GapInfo;
  /** The gateway welcomed this client (after each reconnect). */
  welcome: Welcome;
}
