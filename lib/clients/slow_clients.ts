/**
 * What the gateway says about clients that fall behind: the `w` frame that
 * tells a client how many frames it missed (drop policy), and the log lines
 * for a client closed as too slow or caught up again. The budget and the
 * policy themselves live in each client's outbox (`outbox.ts`).
 *
 * @module
 */

import type { SlowClientPolicy } from "../config/config.ts";
import { logger } from "../log.ts";
import { type GatewayIdentity, gatewayReplyFrame } from "../protocol/clu.ts";
import { describeBytes } from "./frame_size.ts";
import type { HubOptions } from "./hub.ts";

const log = logger("gateway");

/** The hub's slow-client options for a gateway: its budget and policy, notices and logging. */
export function slowClientOptions(
  identity: GatewayIdentity,
  limits: { clientBufferBytes: number; slowClient: SlowClientPolicy },
): HubOptions {
  const budget = limits.clientBufferBytes;
  return {
    bufferBytes: budget,
    policy: limits.slowClient,
    droppedNotice: (dropped) =>
      gatewayReplyFrame(identity, {
        code: "w",
        body: {
          text: `clu-ws skipped ${dropped} frames because this client fell behind (over ${
            describeBytes(budget)
          } waiting)`,
          dropped_frames: dropped,
        },
      }),
    onSlowClose(client, buffered) {
      log.warn("closed client {client} from {peer}: too slow ({buffered} bytes waiting, limit {limit})", {
        client: client.id,
        peer: client.peer,
        buffered,
        limit: budget,
      });
    },
    onCaughtUp(client, dropped) {
      log.warn("client {client} from {peer} caught up after {dropped} frames were skipped", {
        client: client.id,
        peer: client.peer,
        dropped,
      });
    },
  };
}
