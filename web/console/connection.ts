/// <reference lib="dom" />
/**
 * The link to the gateway: the client module's connection (it reconnects and
 * resumes on its own), the gateway and RabbitMQ indicators, the reply rate,
 * and the access token: asked for when the gateway wants one, kept for the
 * tab, asked for again when the gateway stops taking it.
 *
 * @module
 */

import { CluClient, type Frame, type Welcome } from "../client.ts";
import { byId, load, save } from "./dom.ts";

const TOKEN_KEY = "clu-ws.token";

const GATEWAY_LABELS: Record<string, string> = {
  connecting: "connecting…",
  open: "connected",
  closed: "disconnected, retrying",
};

/** Options for {@linkcode Connection}: what the other panels do with what arrives. */
export interface ConnectionOptions {
  /** Each reply, in order. */
  onReply: (frame: Frame) => void;
  /** Each welcome, with the client that got it. */
  onWelcome: (hello: Welcome, client: CluClient) => void;
  /** Replies were missed (before the note that says so). */
  onGap: () => void;
  /** A note for the stream (connection lost, link state, gap). */
  note: (text: string) => void;
}

/** The connection to the gateway and the token it takes. */
export class Connection {
  #gatewayState = byId("gateway-state");
  #brokerState = byId("broker-state");
  #info = byId("info");
  #rate = byId("rate");
  #forgetToken = byId<HTMLButtonElement>("forget-token");
  #tokenDialog = byId<HTMLDialogElement>("token-dialog");
  #tokenForm = byId<HTMLFormElement>("token-form");
  #tokenInput = byId<HTMLInputElement>("token-input");
  #tokenError = byId("token-error");
  #options: ConnectionOptions;

  #client: CluClient | undefined;
  #welcome: Welcome | undefined;
  #token: string | undefined;
  #everOpen = false;
  #checkingToken = false;
  #lastTokenCheck = -Infinity;
  #stopListening: Array<() => void> = [];
  /** Replies since the rate was last shown. */
  #received = 0;

  /** Listens to the token prompt and the forget-token button; {@linkcode Connection.start} connects. */
  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#forgetToken.addEventListener("click", () => {
      save("session", TOKEN_KEY, null);
      location.reload();
    });
    this.#tokenDialog.addEventListener("cancel", (event) => event.preventDefault());
  }

  /** The client, while there is one. */
  get client(): CluClient | undefined {
    return this.#client;
  }

  /** Whether the token prompt is up (keyboard shortcuts wait for it). */
  get asking(): boolean {
    return this.#tokenDialog.open;
  }

  /** Shows the replies received since the last call, as a rate per second (call it every second). */
  showRate(): void {
    this.#rate.textContent = `${this.#received} msg/s`;
    this.#received = 0;
  }

  /** Takes the tab's token, asks for one if the gateway wants one, then connects. */
  async start(): Promise<void> {
    this.#token = load("session", TOKEN_KEY) ?? undefined;
    this.#forgetToken.hidden = this.#token === undefined;
    if (await probe(this.#token) === 401) {
      if (this.#token) save("session", TOKEN_KEY, null);
      this.#token = undefined;
      await this.#obtainToken("");
    }
    this.#connect();
  }

  #connect(): void {
    for (const stop of this.#stopListening.splice(0)) stop();
    this.#client?.close();
    const url = new URL(".", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const current = new CluClient(url.href, this.#token ? { token: this.#token } : {});
    this.#client = current;
    const { note } = this.#options;
    let lastBroker = "";
    this.#stopListening.push(
      current.on("reply", (frame) => {
        this.#received++;
        this.#options.onReply(frame);
      }),
      current.on("connection", (state) => {
        this.#showGateway(state);
        if (state === "closed") {
          const dropped = this.#welcome !== undefined;
          if (this.#everOpen && dropped) note("Connection to the gateway lost; reconnecting.");
          this.#welcome = undefined;
          lastBroker = "";
          // A refused attempt (not a dropped connection) may be a token the gateway no longer takes.
          if (!dropped) this.#recheckToken(current);
        }
      }),
      current.on("broker", (state) => {
        this.#showBroker(state);
        if (lastBroker && state !== lastBroker) note(`RabbitMQ link ${state}.`);
        lastBroker = state;
      }),
      current.on("gap", (gap) => {
        this.#options.onGap();
        note(`Some replies were missed (${gap.reason}); actor state reloaded.`);
      }),
      current.on("welcome", (hello) => {
        if (this.#everOpen && !this.#welcome) note("Reconnected to the gateway.");
        this.#everOpen = true;
        this.#welcome = hello;
        this.#info.textContent = `${hello.exchange} · role ${hello.role}`;
        this.#info.title = `gateway ${hello.name}, epoch ${hello.epoch}`;
        this.#options.onWelcome(hello, current);
      }),
    );
    this.#showGateway(current.state);
  }

  #showGateway(state: string): void {
    const label = GATEWAY_LABELS[state] ?? state;
    this.#gatewayState.dataset.state = state;
    this.#gatewayState.textContent = `Gateway: ${label}`;
    document.title = state === "open" ? "clu-ws console" : `clu-ws console (${label})`;
    if (state !== "open") this.#showBroker("unknown");
  }

  #showBroker(state: string): void {
    this.#brokerState.dataset.state = state;
    this.#brokerState.textContent = `RabbitMQ: ${state}`;
  }

  /** Shows the token prompt until the gateway accepts a token. */
  async #obtainToken(reason: string): Promise<void> {
    this.#tokenError.textContent = reason;
    this.#gatewayState.dataset.state = "connecting";
    this.#gatewayState.textContent = "Gateway: waiting for a token";
    if (!this.#tokenDialog.open) this.#tokenDialog.showModal();
    while (true) {
      this.#tokenInput.focus();
      const candidate = await new Promise<string>((resolve) => {
        this.#tokenForm.addEventListener("submit", (event) => {
          event.preventDefault();
          resolve(this.#tokenInput.value.trim());
        }, { once: true });
      });
      if (!candidate) continue;
      const status = await probe(candidate);
      if (status === 401) {
        this.#tokenError.textContent = "The gateway refused that token. Check it and try again.";
        this.#tokenInput.select();
        continue;
      }
      this.#token = candidate;
      save("session", TOKEN_KEY, candidate);
      this.#tokenInput.value = "";
      this.#tokenError.textContent = "";
      this.#tokenDialog.close();
      this.#forgetToken.hidden = false;
      return;
    }
  }

  /** After a lost connection: if the token is no longer accepted, ask for another. */
  async #recheckToken(current: CluClient): Promise<void> {
    if (this.#checkingToken || performance.now() - this.#lastTokenCheck < 5000) return;
    this.#checkingToken = true;
    this.#lastTokenCheck = performance.now();
    try {
      if (await probe(this.#token) !== 401 || this.#client !== current) return;
      current.close();
      this.#token = undefined;
      save("session", TOKEN_KEY, null);
      this.#forgetToken.hidden = true;
      await this.#obtainToken(this.#everOpen ? "The gateway no longer accepts the token; give another." : "");
      this.#connect();
    } finally {
      this.#checkingToken = false;
    }
  }
}

/** `GET actors` with the token: 401 means the gateway wants a (different) token; 0 that it is unreachable. */
async function probe(candidate: string | undefined): Promise<number> {
  try {
    const response = await fetch(new URL("actors", location.href), {
      headers: candidate ? { authorization: `Bearer ${candidate}` } : {},
      cache: "no-store",
    });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}
