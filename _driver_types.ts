// The pool's PostgreSQL types: strict serializers for every type and the array types of the
// built-in types, installed before anything connects (fetch_types is off, patch 0018); the other
// types read from the server when a statement first meets one, one read at a time for the pool;
// and the parameter types the server gave for each statement, kept for every connection of the
// pool (patch 0021) (docs/round-trips.md, "Cold start").
import { arraySerializer, inferType, Parameter } from "./vendor/postgres/types.js";
import {
  lastResult,
  type PgColumn,
  type PgResult,
  type ReservedSql,
  type Sql,
} from "./_driver_pg.ts";
import { toDatabaseError } from "./_errors.ts";
import { type Serializer, strictArray, strictSerializers } from "./_serialize.ts";
import { parseArray } from "./_pg_text.ts";
import { DatabaseError } from "./errors.ts";

/** The type options of a postgres.js pool that the driver sets (the vendored copy's). */
export interface DriverTypeOptions {
  readonly serializers: Record<number, Serializer> & { unknown?: TypedSerializer };
  readonly parsers: Record<number, ((x: string) => unknown) | undefined>;
  readonly shared: {
    readonly typeArrayMap: Record<number, number>;
    statementTypes?: Map<string, number[]>;
    // Hooks of the vendored driver, called for each array type a connection finds.
    arrayParser?: (element: ((x: string) => unknown) | undefined, typarray: number) => unknown;
    arraySerializer?: (serialize: Serializer) => Serializer;
  };
}

/** `serializers.unknown`: told the parameter's type OID by the vendored Bind (patch 0018). */
type TypedSerializer = (value: unknown, type?: number) => string;

/**
 * The array types of PostgreSQL's built-in base, range and multirange types (element OID, array
 * OID): what postgres.js's type query finds for them, the same on every server version (these
 * OIDs are fixed in the catalog's source), and on CockroachDB for the types it has. The rows of
 * `pg_type` with `typarray <> 0`, `oid < 10000` and `typtype` `b`, `r` or `m`.
 */
const BUILTIN_ARRAYS: readonly (readonly [number, number])[] = (
  "16:1000,17:1001,18:1002,19:1003,20:1016,21:1005,22:1006,23:1007,24:1008,25:1009,26:1028," +
  "27:1010,28:1011,29:1012,30:1013,114:199,142:143,600:1017,601:1018,602:1019,603:1020," +
  "604:1027,628:629,650:651,700:1021,701:1022,718:719,774:775,790:791,829:1040,869:1041," +
  "1033:1034,1042:1014,1043:1015,1082:1182,1083:1183,1114:1115,1184:1185,1186:1187,1266:1270," +
  "1560:1561,1562:1563,1700:1231,1790:2201,2202:2207,2203:2208,2204:2209,2205:2210,2206:2211," +
  "2950:2951,2970:2949,3220:3221,3614:3643,3615:3645,3642:3644,3734:3735,3769:3770,3802:3807," +
  "3904:3905,3906:3907,3908:3909,3910:3911,3912:3913,3926:3927,4072:4073,4089:4090,4096:4097," +
  "4191:4192,4451:6150,4532:6151,4533:6152,4534:6153,4535:6155,4536:6157,5038:5039,5069:271"
).split(",").map((pair) => pair.split(":").map(Number) as [number, number]);

/**
 * Types from this OID on are not fixed in the catalog's source: enums, domains, extensions'
 * types, CockroachDB's own. Their array types are read from the server when first met.
 */
const FIRST_UNFIXED_OID = 10000;

/** postgres.js's type query: each array type's element type. */
const TYPE_QUERY = `SELECT b.oid, b.typarray FROM pg_catalog.pg_type a
  JOIN pg_catalog.pg_type b ON b.oid = a.typelem WHERE a.typcategory = 'A'
  GROUP BY b.oid, b.typarray`;

/** Thrown by `serializers.unknown` for a parameter of a type the pool has not read yet. */
export const UNKNOWN_TYPE = "UNKNOWN_TYPE";

/**
 * Statements whose parameter types the pool keeps (postgres.js's own cache of prepared
 * statements, per connection, has no bound). Past it, new statements are described on each
 * connection, as without the cache.
 */
const STATEMENT_TYPES_MAX = 10_000;

/** A map that takes no new key once it holds `max`. */
class CappedMap<K, V> extends Map<K, V> {
  readonly #max: number;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override set(key: K, value: V): this {
    return this.size < this.#max || this.has(key) ? super.set(key, value) : this;
  }
}

/**
 * SQLSTATEs with which the server may refuse a statement parsed with parameter types that no
 * longer fit it (a column's type changed since the pool learnt them): datatype mismatch, no such
 * function or operator, indeterminate type.
 */
export const STALE_TYPE_CODES: ReadonlySet<string> = new Set(["42804", "42883", "42P18"]);

/** postgres.js's signature of a statement: its parameters' client types, then its text. */
export function signatureOf(text: string, ready: readonly unknown[]): string {
  return ready.map((p) => p instanceof Parameter ? (p as { type: number }).type : inferType(p))
    .join(",") + text;
}

/** Makes the parser and the (strict) serializer of an array type, as postgres.js would. */
function addArrayType(options: DriverTypeOptions, oid: number, typarray: number): void {
  if (options.parsers[typarray] !== undefined && options.serializers[typarray] !== undefined) {
    return;
  }
  options.shared.typeArrayMap[oid] = typarray;
  options.parsers[typarray] = options.shared.arrayParser!(
    options.parsers[oid],
    typarray,
  ) as (x: string) => unknown;
  const element = options.serializers[oid] ?? options.serializers.unknown as Serializer;
  options.serializers[typarray] = options.shared.arraySerializer!((xs) =>
    arraySerializer(xs, element, options, typarray) as string
  );
}

/**
 * Strict serializers for every type, and the array types of the built-in types, NULL-aware and
 * strict, for the whole pool. Those of the other types are added when the pool reads them.
 */
function installTypes(options: DriverTypeOptions): void {
  Object.assign(options.serializers, strictSerializers());
  options.shared.arrayParser = (element, typarray) => {
    const delimiter = typarray === 1020 ? ";" : ",";
    // Not marked `array`: postgres.js then hands over the whole text, leading "{" included.
    return (x: string) => parseArray(x, element, delimiter);
  };
  options.shared.arraySerializer = strictArray;
  for (const [oid, typarray] of BUILTIN_ARRAYS) addArrayType(options, oid, typarray);
}

/** The pool's types, and the reading of those it has not met yet. */
export interface PoolTypes {
  /** The serializers and parsers of the pool's postgres.js options. */
  readonly options: DriverTypeOptions;
  /** The parameter types the server gave for each statement, by `signatureOf()`. */
  readonly statementTypes: Map<string, number[]>;
  /** Types read that have no array parser or serializer to make (a scalar enum, a domain). */
  readonly scalars: Set<number>;
  /** Whether a parameter of this type can be sent without reading the server's types first. */
  isRead(type: number): boolean;
  /** Reads the server's array types (one read at a time), and notes `types` read. */
  readTypes(s: Sql | ReservedSql, types: readonly number[]): Promise<void>;
  /** The columns of the (last) result whose type the pool has not read yet, or undefined. */
  unknownColumns(result: PgResult | PgResult[]): PgColumn[] | undefined;
  /**
   * Reads the types of `columns`, then parses their values in the rows held (postgres.js left
   * them as text) and gives the columns their parsers, for the later runs of a prepared
   * statement.
   */
  parseUnknown(
    s: Sql | ReservedSql,
    result: PgResult | PgResult[],
    columns: PgColumn[],
  ): Promise<PgResult | PgResult[]>;
}

/** Installs the types on a pool before anything connects. */
export function createPoolTypes(sql: Sql, hostPorts: string): PoolTypes {
  const typeOptions = sql.options as unknown as DriverTypeOptions;
  installTypes(typeOptions);
  // The parameter types the server gave for each statement, by postgres.js's signature (client
  // types and text), for every connection of the pool (patch 0021): a statement described on
  // one connection goes in one write on the others.
  const statementTypes = new CappedMap<string, number[]>(STATEMENT_TYPES_MAX);
  (typeOptions.shared as { statementTypes?: Map<string, number[]> }).statementTypes =
    statementTypes;
  // The other types are read from the server when a statement meets one: a result column of a
  // type without a parser, or a parameter of a type without a serializer. One read at a time for
  // the pool; the types that turn out to have no array parser or serializer to make (a scalar
  // enum, a domain) are remembered, so that they are never read for again.
  const scalars = new Set<number>();
  let reading: Promise<void> | undefined;
  const unknownSerializer = typeOptions.serializers.unknown!;
  typeOptions.serializers.unknown = (value, type) => {
    if (type !== undefined && type >= FIRST_UNFIXED_OID && !scalars.has(type)) {
      // Nothing of the statement was written: Bind is built before it is sent.
      throw Object.assign(new Error(`Cannot send a value of type ${type} before reading it`), {
        code: UNKNOWN_TYPE,
        type,
      });
    }
    return unknownSerializer(value);
  };
  function readTypes(s: Sql | ReservedSql, types: readonly number[]): Promise<void> {
    reading ??= (s.unsafe(TYPE_QUERY) as unknown as Promise<{ oid: number; typarray: number }[]>)
      .then((rows) => {
        for (const { oid, typarray } of rows) addArrayType(typeOptions, oid, typarray);
      })
      .finally(() => reading = undefined);
    return reading.then(() => {
      for (const type of types) {
        if (typeOptions.parsers[type] === undefined) scalars.add(type);
      }
    });
  }
  return {
    options: typeOptions,
    statementTypes,
    scalars,
    isRead: (type) =>
      type < FIRST_UNFIXED_OID || typeOptions.serializers[type] !== undefined || scalars.has(type),
    readTypes,
    unknownColumns(result) {
      const columns = lastResult(result)?.columns;
      if (!columns) return undefined;
      let unknown: PgColumn[] | undefined;
      for (const column of columns) {
        if (
          column.type >= FIRST_UNFIXED_OID && column.parser === undefined &&
          !scalars.has(column.type)
        ) {
          (unknown ??= []).push(column);
        }
      }
      return unknown;
    },
    async parseUnknown(s, result, columns) {
      try {
        await readTypes(s, columns.map((c) => c.type));
      } catch (error) {
        // The statement ran: its fate is known, only its result cannot be read. Not a
        // connection error, which would say that it did not run.
        throw new DatabaseError(
          `Cannot read the result: reading the server's types failed: ${(error as Error).message}`,
          { code: "TYPE_READ_FAILED", cause: toDatabaseError(error, hostPorts) },
        );
      }
      const rows = lastResult(result) ?? [];
      for (const column of columns) {
        const parse = typeOptions.parsers[column.type];
        if (parse === undefined) continue;
        column.parser = parse;
        for (const row of rows) {
          const value = row[column.name];
          if (typeof value === "string") row[column.name] = parse(value);
        }
      }
      return result;
    },
  };
}
