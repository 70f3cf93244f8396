/**
 * Sizes of the frames clients send, for `--max-message-size`, and byte counts
 * in words for the messages that name the limit.
 *
 * @module
 */

import { Buffer } from "node:buffer";

const textEncoder = new TextEncoder();

/** UTF-8 size of `text`, computed only when it could exceed `limit`. */
export function textBytes(text: string, limit: number): number {
  return text.length * 3 <= limit ? text.length : textEncoder.encode(text).length;
}

/** A binary message as one byte array (ws hands over fragments as a list). */
export function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  return Array.isArray(data)
    ? Buffer.concat(data)
    : data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : data;
}

/** Size of a binary message in bytes. */
export function byteLength(data: unknown): number {
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
