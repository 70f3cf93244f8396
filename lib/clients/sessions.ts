/**
 * Websocket sessions: what happens on each client's socket from open to close.
 * Text frames are commands (CLU) or control frames (clu-ws v1); anything else
 * gets a reply-shaped error for that client alone; oversized frames close it.
 * Sessions own each client's command allowance and counters; the hub owns the
 * registry, and each client's outbox how frames reach it (and closing it).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import type { ActorState } from "../replies/actor_state.ts";
import { type Access, CLOSE_REVOKED, type Grant, revokedReason } from "../access/admission.ts";
import type { Limits } from "../config/config.ts";
import { type CommandLifecycle, type Recipient, socketRecipient } from "../commands/lifecycle.ts";
import { ControlOperations, type Resumer } from "./control.ts";
import { type GatewayIdentity, gatewayReplyFrame } from "../protocol/clu.ts";
import { type ClientCommand, parseClientCommand } from "../protocol/clu_input.ts";
import {
  type CommandControlFrame,
  encodeCommandControl,
  encodeError,
  encodeWelcome,
  V1_SUBPROTOCOL,
} from "../protocol/v1.ts";
import { parseControl } from "../protocol/v1_parse.ts";
import type { History } from "../replies/history.ts";
import type { KeywordSeries } from "../replies/keyword_series.ts";
import { type Client as HubClient, type Hub, rememberMine } from "./hub.ts";
import { heardFrom, Liveness, type Watched } from "./liveness.ts";
import { byteLength, describeBytes, textBytes, toBytes } from "./frame_size.ts";
import { TokenBucket } from "../commands/rate_limit.ts";
import { logger } from "../log.ts";
import type { ServerSocket } from "../http/server.ts";

const log = logger("sessions");

/** Close code for a client frame over the size limit (RFC 6455 "message too big"). */
export const CLOSE_TOO_BIG = 1009;
export { describeBytes };

/**
 * What sessions keep of a client besides the hub's record: its command
 * allowance and counters, its socket, and the idle watch's flags. Plain
 * fields on the one record, and no closure per socket (the listeners are
 * shared by all): an idle gateway holds thousands of these.
 */
interface SessionState extends Watched {
  /** Its socket. */
  readonly socket: ServerSocket;
  /** Its command allowance (rate limit). */
  readonly allowance: TokenBucket;
  /** Bad frames it sent. */
  badFrames: number;
  /** Commands it sent. */
  commandsSent: number;
  /** Why the gateway closed it, when the socket's own reason does not say (an error, silence). */
  failure: string | undefined;
  /** The close code the gateway chose, when the socket's own code does not say (silence). */
  closeCode: number | undefined;
}

/** A client as sessions see it: the hub's record and the session's own state. */
type Client<G> = HubClient<G> & SessionState;

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
  /** The numeric keywords' recent points for `series`. */
  series?: KeywordSeries;
  /** Per-client limits. */
  limits: Limits;
  /** This run's epoch. */
  epoch: string;
  /** The newest reply's position. */
  latestSeq(): number;
  /** Answers `resume` instead of the history (`--history stream`). */
  resumer?: Resumer<Grant>;
  /**
   * Undefined while the newest position is known; else a promise that
   * settles when it is (or after a bounded wait): the welcome waits for it,
   * so that its `seq` is a real position (`--history stream` before the
   * stream's end is known).
   */
  positionKnown?(): Promise<void> | undefined;
  /** The broker link's state. */
  brokerState(): string;
  /** What the gateway learnt of an actor's commands, as JSON text (v1 `describe`). */
  describe(actor: string): string;
}

/** What happens on a client's socket, told which client. */
interface ClientEvents<C> {
  heard(client: C): void;
  message(client: C, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void;
  close(client: C, code: number, reason: Buffer): void;
  error(client: C, err: Error & { code?: string }): void;
}

/** The listeners every socket shares: ws calls them with the socket as `this`. */
interface SocketListeners {
  heard(this: ServerSocket): void;
  message(this: ServerSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void;
  close(this: ServerSocket, code: number, reason: Buffer): void;
  error(this: ServerSocket, err: Error & { code?: string }): void;
}

/**
 * One set of listeners for all sockets, instead of closures for each
 * (thousands when idle): each finds its socket's client with `clientOf`.
 */
function socketListeners<C>(
  clientOf: (socket: ServerSocket) => C | undefined,
  on: ClientEvents<C>,
): SocketListeners {
  return {
    heard() {
      const client = clientOf(this);
      if (client) on.heard(client);
    },
    message(data, isBinary) {
      const client = clientOf(this);
      if (client) on.message(client, data, isBinary);
    },
    close(code, reason) {
      const client = clientOf(this);
      if (client) on.close(client, code, reason);
    },
    error(err) {
      const client = clientOf(this);
      if (client) on.error(client, err);
    },
  };
}

/** The open sockets, from upgrade to close. */
export class Sessions {
  readonly #context: SessionContext;
  readonly #liveness: Liveness<Client<Grant>>;
  readonly #operations: ControlOperations<Grant>;
  /** Each socket's client, for the listeners that all sockets share. */
  readonly #bySocket = new WeakMap<ServerSocket, Client<Grant>>();
  readonly #listeners: SocketListeners;
  /** How a command's sender is told: frames through the hub. */
  readonly #recipient: Recipient<Client<Grant>>;

  /** Sessions for a gateway. */
  constructor(context: SessionContext) {
    this.#context = context;
    this.#liveness = new Liveness<Client<Grant>>(context.limits.idleTimeoutSeconds, {
      ping: (client) => client.socket.ping(),
      drop: (client, code, reason) => {
        // A peer that answers nothing would hold the closing handshake open: say why, then cut it.
        client.closeCode = code;
        client.failure = reason;
        client.outbox.close(code, reason, { terminate: true });
      },
    });
    this.#listeners = socketListeners<Client<Grant>>((socket) => this.#bySocket.get(socket), {
      heard: heardFrom,
      message: (client, data, isBinary) => {
        heardFrom(client);
        this.#onMessage(client, isBinary ? toBytes(data) : String(data));
      },
      close: (client, code, reason) => this.#onClose(client, code, reason),
      error: (client, err) => this.#onError(client, err),
    });
    this.#operations = new ControlOperations(context);
    this.#recipient = socketRecipient(context.identity, context.hub);
  }

  /** Sockets upgraded and not yet closed (open or closing): what `--max-clients` counts. */
  get count(): number {
    return this.#context.hub.sockets;
  }

  /** The HTTP 503 that refuses one client more than `--max-clients`, or undefined while there is room. */
  refuseWhenFull(peer: string): Response | undefined {
    const { hub, limits } = this.#context;
    if (hub.sockets < limits.maxClients) return undefined;
    log.warn("refused a client from {peer}: {clients} clients connected, the limit (--max-clients)", {
      peer,
      clients: hub.sockets,
    });
    return new Response(
      `clu-ws is serving its maximum of ${limits.maxClients} clients (--max-clients); try again later\n`,
      { status: 503, headers: { "retry-after": "5" } },
    );
  }

  /** Resolves when every socket has closed. */
  allClosed(): Promise<void> {
    return this.#context.hub.allClosed();
  }

  /** Takes over a freshly upgraded (open) socket. */
  attach(socket: ServerSocket, peer: string, grant: Grant, { v1 = false } = {}): void {
    const { hub, limits } = this.#context;
    const state: SessionState = {
      socket,
      allowance: new TokenBucket(limits.commandRate, limits.commandBurst),
      badFrames: 0,
      commandsSent: 0,
      failure: undefined,
      closeCode: undefined,
      heard: true,
      pinged: false,
    };
    const client: Client<Grant> = Object.assign(hub.add(socket, peer, grant, { v1 }), state);
    this.#bySocket.set(socket, client);
    log.info("client {client} connected from {peer} with token {token} ({clients} connected{dialect})", {
      client: client.id,
      peer,
      token: this.#context.access.tokenName(grant) ?? "(none)",
      clients: hub.size,
      dialect: v1 ? ", clu-ws v1" : "",
    });
    this.#liveness.watch(client);
    const listeners = this.#listeners;
    socket.on("pong", listeners.heard);
    socket.on("ping", listeners.heard);
    socket.on("message", listeners.message);
    socket.on("close", listeners.close);
    // ws closes the socket itself after an error (1009 over --max-message-size, 1007 invalid UTF-8);
    // without a listener the error would be thrown and end the process.
    socket.on("error", listeners.error);
    // Admitted just before a reload removed its token: the sweep of that reload did not see it.
    if (this.#context.access.revoked(grant)) return this.#closeRevokedClients([client]);
    if (!v1) return;
    const waiting = this.#context.positionKnown?.();
    if (!waiting) return this.#welcome(client);
    // Out of the fan-out until the welcome: it is the first frame, and its seq says where the client starts.
    hub.hold(client, { quiet: true });
    waiting.then(() => {
      hub.release(client);
      if (client.outbox.open) this.#welcome(client);
    });
  }

  #onClose(client: Client<Grant>, code: number, reason: Buffer): void {
    const { hub } = this.#context;
    this.#liveness.forget(client);
    hub.remove(client);
    const why = client.failure ?? String(reason);
    log.info(
      "client {client} from {peer} ({token}) disconnected ({code}{error}) after {seconds} s: {frames} frames sent, {commands} commands, {bad} bad frames ({clients} connected)",
      {
        client: client.id,
        peer: client.peer,
        token: this.#context.access.tokenName(client.grant) ?? "no token",
        code: client.closeCode ?? code,
        error: why ? `: ${why}` : "",
        seconds: ((Date.now() - client.connectedAt) / 1000).toFixed(1),
        frames: client.outbox.framesSent,
        commands: client.commandsSent,
        bad: client.badFrames,
        clients: hub.size,
      },
    );
  }

  #onError(client: Client<Grant>, err: Error & { code?: string }): void {
    client.failure = err.message;
    if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
      client.badFrames++;
      client.outbox.detach();
      log.warn("closed client {client} from {peer}: sent a frame over the limit of {limit} bytes", {
        client: client.id,
        peer: client.peer,
        limit: this.#context.limits.maxMessageBytes,
      });
    }
  }

  #welcome(client: Client<Grant>): void {
    const { identity, epoch, access, hub } = this.#context;
    hub.send(
      client,
      encodeWelcome({
        version: 1,
        epoch,
        seq: this.#context.latestSeq(),
        name: identity.name,
        exchange: identity.exchange,
        broker: this.#context.brokerState(),
        role: access.role(client.grant),
      }),
    );
  }

  /** Sends the frame that answers a command's `ack` or `track`. */
  #control(client: Client<Grant>, frame: CommandControlFrame): void {
    this.#context.hub.send(client, encodeCommandControl(frame));
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
    const { limits } = this.#context;
    const size = typeof data === "string" ? textBytes(data, limits.maxMessageBytes) : byteLength(data);
    if (size > limits.maxMessageBytes) {
      client.badFrames++;
      log.warn("closed client {client} from {peer}: sent {size} bytes in one frame, limit {limit}", {
        client: client.id,
        peer: client.peer,
        size,
        limit: limits.maxMessageBytes,
      });
      client.outbox.close(CLOSE_TOO_BIG, `message too big: limit ${describeBytes(limits.maxMessageBytes)}`);
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
    if (!client.v1) {
      this.#badInput(
        client,
        `control frames need the clu-ws v1 subprotocol: connect offering "${V1_SUBPROTOCOL}" (see docs/protocol.md)`,
      );
      return;
    }
    const control = parseControl(fields);
    if (control.op !== "error") return this.#operations.answer(client, control);
    client.badFrames++;
    this.#context.hub.send(client, encodeError({ id: control.id, error: control.error }));
  }

  /**
   * Closes the sockets whose token the tokens in force no longer hold (removed,
   * or its secret replaced), with {@linkcode CLOSE_REVOKED} and a reason that
   * names the token; logs how many per token. Called after each reload.
   */
  closeRevoked(): void {
    const { hub, access } = this.#context;
    const revoked = [...hub.clients()].filter((client) => access.revoked(client.grant));
    // Each hub record is a session's record too (attach put the session's state on it).
    this.#closeRevokedClients(revoked as Client<Grant>[]);
  }

  #closeRevokedClients(clients: Client<Grant>[]): void {
    const closed = new Map<string, number>();
    for (const client of clients) {
      // Out of the fan-out at once: not one more reply reaches a revoked token.
      client.outbox.close(CLOSE_REVOKED, revokedReason(client.grant));
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
    this.#liveness.stop();
    this.#context.hub.closeAll(code, reason);
  }
}
