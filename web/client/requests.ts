/**
 * Control requests (subscribe, resume, state, options): each is sent with a
 * fresh numeric id and its promise settles with the gateway's answer to that
 * id — rejected on an `error` answer or when the connection is lost. Generic
 * over the frame types so the v1 unions stay in `lib/protocol/v1.ts`.
 *
 * @module
 */

/** A control frame in either direction: its kind under `clu-ws`, then its fields. */
export interface ControlFrame {
  /** The frame's kind (`subscribe`, `state`, `error`, …). */
  "clu-ws": string;
}

/** Where a request is sent: an open connection or nothing. */
export interface RequestSink {
  /** Sends `text`; false when not connected. */
  send(text: string): boolean;
  /** Whether sending is possible now. */
  readonly isOpen: boolean;
}

/** The control requests (of type `Req`) awaiting an answer (of type `Ans`), by id. */
export class Requests<Req extends ControlFrame, Ans extends ControlFrame> {
  readonly #pending = new Map<number, { resolve: (frame: Ans) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  /** Sends `request` on `sink` with a fresh id; resolves with the answer, rejects when not connected. */
  send(request: Req, sink: RequestSink): Promise<Ans> {
    if (!sink.isOpen) return Promise.reject(new Error("not connected"));
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<Ans>();
    this.#pending.set(id, { resolve, reject });
    const { "clu-ws": operation, ...fields } = request;
    sink.send(JSON.stringify({ "clu-ws": operation, id, ...fields }));
    return promise;
  }

  /** Settles the request `frame` answers (an `error` frame rejects it); ignores frames that answer none. */
  answer(frame: Ans): void {
    const { id, error } = frame as { id?: unknown; error?: unknown };
    if (typeof id !== "number" || !this.#pending.has(id)) return;
    const request = this.#pending.get(id)!;
    this.#pending.delete(id);
    if (frame["clu-ws"] === "error") request.reject(new Error(String(error)));
    else request.resolve(frame);
  }

  /** Rejects every request awaiting an answer with `message`. */
  failAll(message: string): void {
    for (const request of this.#pending.values()) request.reject(new Error(message));
    this.#pending.clear();
  }
}
