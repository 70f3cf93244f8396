/**
 * Websocket sessions: what happens on each client's socket from open to close.
 * Text frames are commands (CLU) or control frames (clu-ws v1); anything else
 * gets a reply-shaped error for that client alone; oversized frames close it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { ActorState } from "../replies/actor_state.ts";
import {
  type Access,
  CLOSE_REVOKED,
  type Grant,
  revokedReason,
  V1_SUBPROTOCOL,
} from "../access/admission.ts";
import type { Limits } from "../config/config.ts";
import { type CommandLifecycle, type Recipient, socketRecipient } from "../commands/lifecycle.ts";
import { compileFilter } from "./filter.ts";
import {
  type ClientCommand,
  CONTROL_KEY,
  type GatewayIdentity,
  gatewayReplyFrame,
  parseClientCommand,
} from "../protocol/clu.ts";
import { compileGlobs, globListProblem, MAX_CLIENT_GLOBS } from "../protocol/glob.ts";
import type { History } from "../replies/history.ts";
import { type Client, type Hub, rememberMine } from "./hub.ts";
import { logger } from "../log.ts";
import type { ServerSocket } from "../http/server.ts";

const log = logger("sessions");

/** Close code for a client frame over the size limit (RFC 6455 "message too big"). */
export const CLOSE_TOO_BIG = 1009;
/** The subprotocol that opts a connection into clu-ws v1. */
export const V1_PROTOCOL: string = V1_SUBPROTOCOL;

/** Whether a socket was heard from since the last look, whether it was pinged, and how to drop it. */
interface Liveness {
  heard: boolean;
  pinged: boolean;
  drop(code: number, reason: string): void;
}

/** What sessions need from the gateway. */
export interface SessionContext {
  /** The gateway's name and exchange. */
  identity: GatewayIdentity;
  /** Tokens and rules. */
  access: Access;
  /** Runs each command and tells its sender. */
  commands: CommandLifecycle;
  /** The connected clients. */
  hub: Hub<Grant>;
  /** Recent replies for `resume`. */
  history: History;
  /** The actors' keywords for `state`. */
  state: ActorState;
  /** Per-client limits. */
  limits: Limits;
  /** This run's epoch. */
  epoch: string;
  /** The newest reply's position. */
  latestSeq(): number;
  /** The broker link's state. */
  brokerState(): string;
}

/** The open sockets, from upgrade to close. */
export class Sessions {
  readonly #context: SessionContext;
  /** How a command's sender is told: frames through the hub. */
  readonly #recipient: Recipient<Client<Grant>>;
  #sockets = 0;
  #allClosed: PromiseWithResolvers<void> | undefined;

  /** Sessions for a gateway. */
  constructor(context: SessionContext) {
    this.#context = context;
    this.#recipient = socketRecipient(context.identity, context.hub);
  }

  /** Sockets upgraded and not yet closed (open or opening). */
  get count(): number {
    return this.#sockets;
  }

  /** Resolves when every socket has closed. */
  allClosed(): Promise<void> {
    this.#allClosed ??= Promise.withResolvers<void>();
    if (this.#sockets === 0) this.#allClosed.resolve();
    return this.#allClosed.promise;
  }

  /** Takes over a freshly upgraded (open) socket. */
  attach(socket: ServerSocket, peer: string, grant: Grant, { v1 = false } = {}): void {
    const { hub } = this.#context;
    this.#sockets++;
    const client = hub.add(socket, peer, grant, { v1 });
    log.info("client {client} connected from {peer} with token {token} ({clients} connected{dialect})", {
      client: client.id,
      peer,
      token: this.#context.access.tokenName(grant) ?? "(none)",
      clients: hub.size,
      dialect: v1 ? ", clu-ws v1" : "",
    });
    let failure: string | undefined;
    let closeCode: number | undefined;
    const liveness: Liveness = {
      heard: true,
      pinged: false,
      drop(code, reason) {
        // A peer that answers nothing would hold the closing handshake open: say why, then cut it.
        closeCode = code;
        failure = reason;
        socket.close(code, reason);
        socket.terminate();
      },
    };
    this.#watchIdle(socket, liveness);
    const heard = () => {
      liveness.heard = true;
      liveness.pinged = false;
    };
    socket.on("pong", heard);
    socket.on("ping", heard);
    socket.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      heard();
      this.#onMessage(client, isBinary ? toBytes(data) : String(data));
    });
    socket.on("close", (code: number, reason: Buffer) => {
      this.#sockets--;
      this.#idle.delete(socket);
      if (this.#sockets === 0) this.#allClosed?.resolve();
      hub.remove(client);
      const why = failure ?? String(reason);
      log.info(
        "client {client} from {peer} ({token}) disconnected ({code}{error}) after {seconds} s: {frames} frames sent, {commands} commands, {bad} bad frames ({clients} connected)",
        {
          client: client.id,
          peer,
          token: this.#context.access.tokenName(client.grant) ?? "no token",
          code: closeCode ?? code,
          error: why ? `: ${why}` : "",
          seconds: ((Date.now() - client.connectedAt) / 1000).toFixed(1),
          frames: client.framesSent,
          commands: client.commandsSent,
          bad: client.badFrames,
          clients: hub.size,
        },
      );
    });
    // ws closes the socket itself after an error (1009 over --max-message-size, 1007 invalid UTF-8);
    // without a listener the error would be thrown and end the process.
    socket.on("error", (err: Error & { code?: string }) => {
      failure = err.message;
      if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
        client.badFrames++;
        hub.remove(client);
        log.warn("closed client {client} from {peer}: sent a frame over the limit of {limit} bytes", {
          client: client.id,
          peer,
          limit: this.#context.limits.maxMessageBytes,
        });
      }
    });
    // Admitted just before a reload removed its token: the sweep of that reload did not see it.
    if (this.#context.access.revoked(grant)) return this.#closeRevokedClients([client]);
    if (v1) this.#welcome(client);
  }

  readonly #idle = new Map<ServerSocket, Liveness>();
  #idleTimer: ReturnType<typeof setInterval> | undefined;

  /** Pings a socket silent for half of --idle-timeout; drops it (1001) when the next half brings nothing. */
  #watchIdle(socket: ServerSocket, liveness: Liveness): void {
    const seconds = this.#context.limits.idleTimeoutSeconds;
    if (seconds <= 0) return;
    this.#idle.set(socket, liveness);
    this.#idleTimer ??= setInterval(() => {
      for (const [peer, state] of this.#idle) {
        if (state.heard) {
          state.heard = false;
        } else if (!state.pinged) {
          state.pinged = true;
          try {
            peer.ping();
          } catch {
            // Closing already.
          }
        } else {
          this.#idle.delete(peer);
          state.drop(1001, "no answer to ping within --idle-timeout");
        }
      }
    }, (seconds * 1000) / 2);
  }

  #welcome(client: Client<Grant>): void {
    const { identity, epoch, access } = this.#context;
    const role = access.role(client.grant);
    this.#control(client, {
      "clu-ws": "welcome",
      version: 1,
      epoch,
      seq: this.#context.latestSeq(),
      name: identity.name,
      exchange: identity.exchange,
      broker: this.#context.brokerState(),
      role,
    });
  }

  #control(client: Client<Grant>, frame: Record<string, unknown>): void {
    this.#context.hub.send(client, JSON.stringify(frame));
  }

  #badInput(
    client: Client<Grant>,
    error: string,
    extra: { commandId?: string | number; consumer?: string } = {},
  ) {
    client.badFrames++;
    this.#context.hub.send(
      client,
      gatewayReplyFrame(this.#context.identity, {
        code: extra.commandId === undefined ? "e" : "f",
        error,
        ...extra,
      }),
    );
    log.debug("client {client} ({peer}) sent bad input: {error}", {
      client: client.id,
      peer: client.peer,
      error,
    });
  }

  #onMessage(client: Client<Grant>, data: unknown): void {
    const { limits, hub } = this.#context;
    const size = typeof data === "string" ? textBytes(data, limits.maxMessageBytes) : byteLength(data);
    if (size > limits.maxMessageBytes) {
      client.badFrames++;
      log.warn("closed client {client} from {peer}: sent {size} bytes in one frame, limit {limit}", {
        client: client.id,
        peer: client.peer,
        size,
        limit: limits.maxMessageBytes,
      });
      hub.remove(client);
      client.socket.close(CLOSE_TOO_BIG, `message too big: limit ${describeBytes(limits.maxMessageBytes)}`);
      return;
    }
    if (typeof data !== "string") {
      this.#badInput(
        client,
        'binary frames are not supported; send a JSON text frame {"consumer": "<actor>", "command_string": "<command>"}',
      );
      return;
    }
    const parsed = parseClientCommand(data, { v1: client.v1 });
    if (parsed.kind === "error") {
      this.#badInput(client, parsed.error, { commandId: parsed.commandId, consumer: parsed.consumer });
    } else if (parsed.kind === "control") {
      this.#onControl(client, parsed.fields);
    } else {
      this.#onCommand(client, parsed);
    }
  }

  /** Runs a command; the lifecycle tells the client what became of it (its promise never rejects). */
  #onCommand(client: Client<Grant>, command: ClientCommand): void {
    client.commandsSent++;
    if (client.v1) rememberMine(client, command.commandId);
    const { grant, allowance, id, peer } = client;
    void this.#context.commands.run(command, {
      grant,
      allowance,
      client: id,
      peer,
      to: client,
      recipient: this.#recipient,
    }, {
      ack: client.v1 && command.ack,
      track: client.v1 && command.track ? { timeoutSeconds: command.timeoutSeconds } : undefined,
      warn: true,
    });
  }

  #onControl(client: Client<Grant>, fields: Record<string, unknown>): void {
    const id = fields.id ?? null;
    const error = (message: string) => {
      client.badFrames++;
      this.#control(client, { "clu-ws": "error", id, error: message });
    };
    if (!client.v1) {
      this.#badInput(
        client,
        `control frames need the clu-ws v1 subprotocol: connect offering "${V1_PROTOCOL}" (see docs/protocol.md)`,
      );
      return;
    }
    switch (fields[CONTROL_KEY]) {
      case "subscribe": {
        const filter = compileFilter(fields);
        if (typeof filter === "string") return error(filter);
        const empty = Object.keys(filter.spec).length === 0;
        this.#context.hub.setFilter(client, empty ? undefined : filter);
        return this.#control(client, { "clu-ws": "subscribed", id, filter: filter.spec });
      }
      case "resume":
        return this.#resume(client, fields, id, error);
      case "options": {
        if (fields.batch !== undefined && typeof fields.batch !== "boolean") {
          return error(`"batch" must be true or false`);
        }
        if (typeof fields.batch === "boolean") this.#context.hub.setBatch(client, fields.batch);
        return this.#control(client, { "clu-ws": "options", id, batch: client.batch });
      }
      case "state": {
        const actors = fields.actors;
        const problem = actors === undefined ? undefined : globListProblem(actors, MAX_CLIENT_GLOBS);
        if (problem) return error(`"actors" ${problem}`);
        const globs = actors === undefined ? undefined : compileGlobs(actors as string[]);
        const snapshot = this.#context.state.snapshotJson(globs);
        return this.#context.hub.send(
          client,
          `{"clu-ws":"state","id":${
            JSON.stringify(id)
          },"seq":${this.#context.latestSeq()},"actors":${snapshot}}`,
        );
      }
      default:
        return error(
          `unknown operation ${
            JSON.stringify(fields[CONTROL_KEY])
          }; use subscribe, resume, state or options (docs/protocol.md)`,
        );
    }
  }

  #resume(
    client: Client<Grant>,
    fields: Record<string, unknown>,
    id: unknown,
    error: (m: string) => void,
  ): void {
    const { epoch, history, hub } = this.#context;
    const seq = fields.seq;
    if (typeof fields.epoch !== "string" || typeof seq !== "number" || !Number.isInteger(seq) || seq < 0) {
      return error(`resume needs "epoch" (text) and "seq" (a whole number) from the frames received`);
    }
    const latest = this.#context.latestSeq();
    const oldest = history.oldest() ?? latest + 1;
    const gap = (reason: string) =>
      this.#control(client, { "clu-ws": "gap", id, reason, epoch, oldest, latest });
    if (fields.epoch !== epoch) {
      return gap("the gateway restarted since (another epoch); nothing can be replayed");
    }
    if (seq > latest) return gap(`seq ${seq} is ahead of this gateway's latest (${latest})`);
    const entries = history.after(seq, latest);
    if (entries === undefined) {
      return gap(`replies after ${seq} are no longer kept (the history starts at ${oldest})`);
    }
    let count = 0;
    // Synchronous: no live reply can slip in between the replay and the answer.
    for (const entry of entries) {
      if (client.filter && !client.filter.matches(entry.meta, (commandId) => client.mine.has(commandId))) {
        continue;
      }
      hub.send(client, entry.frame);
      count++;
    }
    this.#control(client, { "clu-ws": "resumed", id, from: seq, to: latest, count });
  }

  /**
   * Closes the sockets whose token the tokens in force no longer hold (removed,
   * or its secret replaced), with {@linkcode CLOSE_REVOKED} and a reason that
   * names the token; logs how many per token. Called after each reload.
   */
  closeRevoked(): void {
    const { hub, access } = this.#context;
    this.#closeRevokedClients([...hub.clients()].filter((client) => access.revoked(client.grant)));
  }

  #closeRevokedClients(clients: Client<Grant>[]): void {
    const closed = new Map<string, number>();
    for (const client of clients) {
      // Out of the hub first: not one more reply reaches a revoked token.
      this.#context.hub.remove(client);
      try {
        client.socket.close(CLOSE_REVOKED, revokedReason(client.grant));
      } catch {
        // Already closing.
      }
      const name = client.grant.name ?? "?";
      closed.set(name, (closed.get(name) ?? 0) + 1);
    }
    for (const [token, count] of closed) {
      log.warn("closed {count} sockets of token {token}: it was revoked (tokens file reloaded)", {
        count,
        token,
      });
    }
  }

  /** Closes every client with the given code and reason, and stops watching for idle ones. */
  closeAll(code: number, reason: string): void {
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#idle.clear();
    this.#context.hub.closeAll(code, reason);
  }
}

const textEncoder = new TextEncoder();

/** UTF-8 size of `text`, computed only when it could exceed `limit`. */
function textBytes(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : textEncoder.encode(text).length;
}

/** A binary message as one byte array (ws hands over fragments as a list). */
function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  return Array.isArray(data)
    ? Buffer.concat(data)
    : data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : data;
}

function byteLength(data: unknown): number {
  if (data instanceof ArrayBuffer) return data.byteLength;
  if (ArrayBuffer.isView(data)) return data.byteLength;
  if (data instanceof Blob) return data.size;
  return 0;
}

/** A byte count in words, e.g. `64 KiB`. */
export function describeBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / 1024 / 1024} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
