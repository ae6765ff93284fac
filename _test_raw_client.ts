// Test support for the proxy's tests (_test_proxy*_test.ts): a raw wire-protocol client that
// sends exactly the messages it is given, and a database through the proxy on one connection.
import assert from "node:assert/strict";
import { AsyncDatabase } from "./async_database.ts";
import { testUrl } from "./_test_util.ts";
import type { FaultProxy } from "./_test_proxy.ts";

export const encoder = new TextEncoder();
export const decoder = new TextDecoder();

/** A wire-protocol message: type byte, int32 length, body. */
export function message(type: string, ...parts: (string | number[])[]): Uint8Array {
  const body = parts.flatMap((p) => typeof p === "string" ? [...encoder.encode(p), 0] : p);
  const bytes = new Uint8Array(5 + body.length);
  bytes[0] = type.charCodeAt(0);
  new DataView(bytes.buffer).setInt32(1, 4 + body.length);
  bytes.set(body, 5);
  return bytes;
}

export const int16 = (n: number): number[] => [(n >> 8) & 255, n & 255];
export const query = (sql: string) => message("Q", sql);
export const parse = (name: string, sql: string) => message("P", name, sql, int16(0));
export const describeStatement = (name: string) => message("D", [83 /* S */], name);
export const bind = (name: string) =>
  message("B", "", name, [...int16(0), ...int16(0), ...int16(0)]);
export const execute = () => message("E", "", [0, 0, 0, 0]);
export const flush = () => message("H");
export const sync = () => message("S");
export const terminate = () => message("X");

export function concat(...chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A message the raw client read. */
export interface Received {
  readonly type: string;
  readonly body: Uint8Array;
}

/** The fields of an ErrorResponse: severity, SQLSTATE, message. */
export function errorFields(m: Received): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < m.body.length && m.body[at] !== 0) {
    const end = m.body.indexOf(0, at + 1);
    fields[String.fromCharCode(m.body[at]!)] = decoder.decode(m.body.subarray(at + 1, end));
    at = end + 1;
  }
  return fields;
}

/** A PostgreSQL client written by hand: it sends exactly the bytes a test gives it. */
export class RawClient {
  readonly #conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);
  /** The BackendKeyData of the session (process id and secret), for a CancelRequest. */
  key: Uint8Array | undefined;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects, sends the startup message, and reads up to the first ReadyForQuery. */
  static async connect(port: number): Promise<RawClient> {
    const client = await RawClient.open(port);
    await client.startup();
    const answer = await client.readUntilReady();
    client.key = answer.find((m) => m.type === "K")?.body;
    const error = answer.find((m) => m.type === "E");
    if (error) {
      client.close();
      throw new Error(`Cannot connect: ${errorFields(error).M}`);
    }
    return client;
  }

  /** Opens the TCP connection only. */
  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends the startup message for the test server's user and database. */
  async startup(): Promise<void> {
    const url = new URL(testUrl().replace(/^[a-z]+:/i, "http:"));
    const params = [
      "user",
      decodeURIComponent(url.username) || "root",
      "database",
      decodeURIComponent(url.pathname.slice(1)) || "postgres",
      "",
    ];
    const body = [0, 3, 0, 0, ...params.flatMap((p) => [...encoder.encode(p), 0])];
    const bytes = new Uint8Array(4 + body.length);
    new DataView(bytes.buffer).setInt32(0, bytes.length);
    bytes.set(body, 4);
    await this.send(bytes);
  }

  /** Writes the messages in one write call. */
  async send(...messages: Uint8Array[]): Promise<void> {
    const bytes = concat(...messages);
    let written = 0;
    while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
  }

  /** Reads one message, or `null` when the server closed the connection. */
  async read(): Promise<Received | null> {
    while (true) {
      if (this.#buffer.length >= 5) {
        const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
        const length = view.getInt32(1);
        if (this.#buffer.length >= 1 + length) {
          const m = {
            type: String.fromCharCode(view.getUint8(0)),
            body: this.#buffer.slice(5, 1 + length),
          };
          this.#buffer = this.#buffer.slice(1 + length);
          return m;
        }
      }
      const chunk = new Uint8Array(16 * 1024);
      let n: number | null;
      // A test that waits for an answer that never comes fails instead of hanging.
      const timer = setTimeout(() => this.close(), 10_000);
      try {
        n = await this.#conn.read(chunk);
      } catch {
        n = null;
      } finally {
        clearTimeout(timer);
      }
      if (n === null) return null;
      this.#buffer = concat(this.#buffer, chunk.subarray(0, n));
    }
  }

  /** Reads `count` ReadyForQuery messages and what came before them. */
  async readUntilReady(count = 1): Promise<Received[]> {
    const out: Received[] = [];
    let seen = 0;
    while (seen < count) {
      const m = await this.read();
      if (m === null) throw new Error("The server closed the connection");
      out.push(m);
      if (m.type === "Z") seen++;
      if (m.type === "E" && errorFields(m).S === "FATAL") break;
    }
    return out;
  }

  /** Reads every message until the server closes the connection. */
  async readToEnd(): Promise<Received[]> {
    const out: Received[] = [];
    for (let m = await this.read(); m !== null; m = await this.read()) out.push(m);
    return out;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** The status byte of the last ReadyForQuery among `messages`. */
export function lastStatus(messages: readonly Received[]): string {
  const status = messages.filter((m) => m.type === "Z").at(-1)?.body[0];
  return status === undefined ? "" : String.fromCharCode(status);
}

export async function waitFor(what: string, condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected an error");
}

/** A database through the proxy with one connection, connected and past its first statement. */
export async function oneConnection(proxy: FaultProxy): Promise<AsyncDatabase> {
  const db = new AsyncDatabase(proxy.url(testUrl()), { minConnections: 1, maxConnections: 1 });
  await db.execute("SELECT 1");
  return db;
}
