/**
 * The bookkeeping behind `CluClient.command()`: one promise per command in
 * flight, fed its replies, settled once by the reply or `done` frame that
 * ends it, by a timeout, or by the connection ending for good.
 *
 * @module
 */

import type { CommandStatus } from "../../lib/protocol/v1.ts";
import type { Frame } from "./types.ts";

/** How a command ended. */
export interface CommandResult {
  /** The command's id. */
  commandId: string;
  /** The actor. */
  consumer: string;
  /** `done`, `failed` or `timeout`. */
  status: CommandStatus;
  /** The message code that ended it, or null. */
  code: string | null;
  /** Why it failed, when known. */
  error?: string;
  /** Every reply to it, in order. */
  replies: Frame[];
  /** Milliseconds from sending to the end. */
  elapsedMs: number;
}

/** A command that failed or timed out; `result` has its replies. */
export class CommandError extends Error {
  /** The command's end. */
  readonly result: CommandResult;
  /** Builds the error from a result. */
  constructor(result: CommandResult) {
    super(
      `${result.consumer} ${result.status === "timeout" ? "timed out" : "failed"}: ${
        result.error ?? JSON.stringify(result.replies.at(-1)?.body ?? {})
      }`,
    );
    this.name = "CommandError";
    this.result = result;
  }
}

/** How a command ends, as given to {@linkcode PendingCommands.settle}. */
export interface CommandEnd {
  /** `done`, `failed` or `timeout`. */
  status: CommandStatus;
  /** The message code that ended it, or null. */
  code: string | null;
  /** Why it failed, when known. */
  error?: string;
}

interface PendingCommand {
  consumer: string;
  started: number;
  replies: Frame[];
  resolve: (result: CommandResult) => void;
  reject: (error: CommandError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The commands this client sent that have not ended yet, by command id. */
export class PendingCommands {
  readonly #commands = new Map<string, PendingCommand>();

  /**
   * Tracks command `id` sent to `consumer`; the promise resolves when it ends
   * `done` and rejects with a {@linkcode CommandError} otherwise. It times out
   * 5 s after `timeoutSeconds`: the gateway times tracked commands out itself,
   * so this only catches a connection that never comes back.
   */
  start(id: string, options: { consumer: string; timeoutSeconds: number }): Promise<CommandResult> {
    const { consumer, timeoutSeconds } = options;
    const { promise, resolve, reject } = Promise.withResolvers<CommandResult>();
    this.#commands.set(id, {
      consumer,
      started: performance.now(),
      replies: [],
      resolve,
      reject,
      timer: setTimeout(
        () => this.settle(id, { status: "timeout", code: null, error: `no end within ${timeoutSeconds} s` }),
        timeoutSeconds * 1000 + 5000,
      ),
    });
    return promise;
  }

  /** Records `frame` if it answers a command in flight, and ends that command on `:`, `f` or `!`. */
  reply(frame: Frame): void {
    const id = frame.headers.command_id;
    const pending = typeof id === "string" ? this.#commands.get(id) : undefined;
    if (!pending) return;
    pending.replies.push(frame);
    const code = String(frame.headers.message_code).toLowerCase();
    if (code === ":") this.settle(id as string, { status: "done", code: frame.headers.message_code });
    else if (code === "f" || code === "!") {
      this.settle(id as string, {
        status: "failed",
        code: frame.headers.message_code,
        error: errorOf(frame),
      });
    }
  }

  /** Ends command `id` (if still in flight) with `end`. */
  settle(id: string, end: CommandEnd): void {
    const pending = this.#commands.get(id);
    if (!pending) return;
    this.#commands.delete(id);
    clearTimeout(pending.timer);
    const result: CommandResult = {
      commandId: id,
      consumer: pending.consumer,
      status: end.status,
      code: end.code,
      ...(end.error !== undefined ? { error: end.error } : {}),
      replies: pending.replies,
      elapsedMs: Math.round(performance.now() - pending.started),
    };
    if (end.status === "done") pending.resolve(result);
    else pending.reject(new CommandError(result));
  }

  /** Fails every command in flight with `error`. */
  failAll(error: string): void {
    for (const id of [...this.#commands.keys()]) this.settle(id, { status: "failed", code: null, error });
  }
}

function errorOf(frame: Frame): string | undefined {
  const error = frame.body?.error;
  return typeof error === "string" ? error : error === undefined ? undefined : JSON.stringify(error);
}

/** A command id: a UUID where the platform offers one (secure contexts), else random hex. */
export function newCommandId(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return Array.from({ length: 4 }, () => Math.random().toString(16).slice(2, 10)).join("-");
}
