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

/** Options for {@linkcode createConnection}: what the other panels do with what arrives. */
export interface ConnectionOptions {
  /** Each reply, in order. */
  onReply: (frame: Frame) => void;
  /** Each welcome, with the client that got it. */
  onWelcome: (hello: Welcome, client: CluClient) => void;
  /** Replies were missed (called before the note that says so). */
  onGap: () => void;
  /** A note for the stream (connection lost, link state, gap). */
  note: (text: string) => void;
}

/** The connection to the gateway and the token it takes. */
export interface Connection {
  /** The client, while there is one. */
  client(): CluClient | undefined;
  /** Whether the token prompt is up (keyboard shortcuts wait for it). */
  asking(): boolean;
  /** Shows the replies received since the last call, as a rate per second (call it every second). */
  showRate(): void;
  /** Takes the tab's token, asks for one if the gateway wants one, then connects. */
  start(): Promise<void>;
}

/** The connection panel, listening to the token prompt and the forget-token button; `start` connects. */
export function createConnection(options: ConnectionOptions): Connection {
  const { note } = options;
  const gatewayState = byId("gateway-state");
  const brokerState = byId("broker-state");
  const info = byId("info");
  const rate = byId("rate");
  const forgetToken = byId<HTMLButtonElement>("forget-token");
  const tokenDialog = byId<HTMLDialogElement>("token-dialog");
  const tokenForm = byId<HTMLFormElement>("token-form");
  const tokenInput = byId<HTMLInputElement>("token-input");
  const tokenError = byId("token-error");

  let client: CluClient | undefined;
  let welcome: Welcome | undefined;
  let token: string | undefined;
  let everOpen = false;
  let checkingToken = false;
  let lastTokenCheck = -Infinity;
  const stopListening: Array<() => void> = [];
  /** Replies since the rate was last shown. */
  let received = 0;

  function showGateway(state: string): void {
    gatewayState.dataset.state = state;
    gatewayState.textContent = `Gateway: ${GATEWAY_LABELS[state] ?? state}`;
    document.title = state === "open"
      ? "clu-ws console"
      : `clu-ws console (${GATEWAY_LABELS[state] ?? state})`;
    if (state !== "open") showBroker("unknown");
  }

  function showBroker(state: string): void {
    brokerState.dataset.state = state;
    brokerState.textContent = `RabbitMQ: ${state}`;
  }

  function connect(): void {
    for (const stop of stopListening.splice(0)) stop();
    client?.close();
    const url = new URL(".", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const current = new CluClient(url.href, token ? { token } : {});
    client = current;
    let lastBroker = "";
    stopListening.push(
      current.on("reply", (frame) => {
        received++;
        options.onReply(frame);
      }),
      current.on("connection", (state) => {
        showGateway(state);
        if (state === "closed") {
          const dropped = welcome !== undefined;
          if (everOpen && dropped) note("Connection to the gateway lost; reconnecting.");
          welcome = undefined;
          lastBroker = "";
          // A refused attempt (not a dropped connection) may be a token the gateway no longer takes.
          if (!dropped) recheckToken(current);
        }
      }),
      current.on("broker", (state) => {
        showBroker(state);
        if (lastBroker && state !== lastBroker) note(`RabbitMQ link ${state}.`);
        lastBroker = state;
      }),
      current.on("gap", (gap) => {
        options.onGap();
        note(`Some replies were missed (${gap.reason}); actor state reloaded.`);
      }),
      current.on("welcome", (hello) => {
        if (everOpen && !welcome) note("Reconnected to the gateway.");
        everOpen = true;
        welcome = hello;
        info.textContent = `${hello.exchange} · role ${hello.role}`;
        info.title = `gateway ${hello.name}, epoch ${hello.epoch}`;
        options.onWelcome(hello, current);
      }),
    );
    showGateway(current.state);
  }

  /** Shows the token prompt until the gateway accepts a token. */
  async function obtainToken(reason: string): Promise<void> {
    tokenError.textContent = reason;
    gatewayState.dataset.state = "connecting";
    gatewayState.textContent = "Gateway: waiting for a token";
    if (!tokenDialog.open) tokenDialog.showModal();
    while (true) {
      tokenInput.focus();
      const candidate = await new Promise<string>((resolve) => {
        tokenForm.addEventListener("submit", (event) => {
          event.preventDefault();
          resolve(tokenInput.value.trim());
        }, { once: true });
      });
      if (!candidate) continue;
      const status = await probe(candidate);
      if (status === 401) {
        tokenError.textContent = "The gateway refused that token. Check it and try again.";
        tokenInput.select();
        continue;
      }
      token = candidate;
      save("session", TOKEN_KEY, token);
      tokenInput.value = "";
      tokenError.textContent = "";
      tokenDialog.close();
      forgetToken.hidden = false;
      return;
    }
  }

  /** After a lost connection: if the token is no longer accepted, ask for another. */
  async function recheckToken(current: CluClient): Promise<void> {
    if (checkingToken || performance.now() - lastTokenCheck < 5000) return;
    checkingToken = true;
    lastTokenCheck = performance.now();
    try {
      if (await probe(token) !== 401 || client !== current) return;
      current.close();
      token = undefined;
      save("session", TOKEN_KEY, null);
      forgetToken.hidden = true;
      await obtainToken(everOpen ? "The gateway no longer accepts the token; give another." : "");
      connect();
    } finally {
      checkingToken = false;
    }
  }

  forgetToken.addEventListener("click", () => {
    save("session", TOKEN_KEY, null);
    location.reload();
  });
  tokenDialog.addEventListener("cancel", (event) => event.preventDefault());

  return {
    client: () => client,
    asking: () => tokenDialog.open,
    showRate() {
      rate.textContent = `${received} msg/s`;
      received = 0;
    },
    async start() {
      token = load("session", TOKEN_KEY) ?? undefined;
      forgetToken.hidden = token === undefined;
      if (await probe(token) === 401) {
        if (token) save("session", TOKEN_KEY, null);
        token = undefined;
        await obtainToken("");
      }
      connect();
    },
  };
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
