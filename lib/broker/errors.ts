/**
 * What an error from amqplib or a socket says, for the log and for the
 * reconnect decisions: a short description, and whether it was a refusal.
 *
 * @module
 */

/** A short, password-free description of an error: its message, with its code when the message lacks it. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string | number }).code;
    return code && !err.message.includes(String(code)) ? `${err.message} [${code}]` : err.message;
  }
  return String(err);
}

/** Whether a connection attempt failed because nothing listens on the port (ECONNREFUSED). */
export function isRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // Not any "refused": RabbitMQ says ACCESS_REFUSED to a bad login, on a port that accepts.
  return code === "ECONNREFUSED" || (err instanceof Error && /\bECONNREFUSED\b/.test(err.message));
}
