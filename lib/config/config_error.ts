/**
 * The one error every configuration problem becomes: the command line prints
 * its message as is and exits with code 2.
 *
 * @module
 */

/** A configuration error: the message says what is wrong and how to fix it. */
export class ConfigError extends Error {
  /** Builds an error whose message is shown to the user as is. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}
