import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

/** migrations/ at the package root: the same two levels up from src/db and dist/db. */
export const migrationsDirectory = fileURLToPath(new URL("../../migrations/", import.meta.url))

/** Every `NNNN_name.sql` file in the directory, each run as one multi-statement script. */
export const sqlFileLoader = (directory: string): Migrator.Loader =>
  Effect.try({
    try: () =>
      readdirSync(directory)
        .map((file) => /^(\d{4})_(.+)\.sql$/.exec(file))
        .filter((match) => match !== null)
        .map(([file, id, name]) => {
          const text = readFileSync(`${directory}/${file}`, "utf8")
          const run = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text))
          return [Number(id), name ?? "", Effect.succeed(run)] as const
        })
        .sort(([a], [b]) => a - b),
    catch: (cause) => new Migrator.MigrationError({ reason: "import-error", message: `cannot read ${directory}`, cause })
  })

const run = Migrator.make({})

/** An arbitrary constant: the advisory lock that serialises concurrent migrators. */
const MIGRATION_LOCK = 7_264_119_001

/**
 * Applies pending migrations. The Migrator locks its table, but creating that table on an
 * empty database races; a transaction-scoped advisory lock makes concurrent starts safe.
 * The table is created here first: the Migrator probes for it with a statement that fails
 * when it is missing, which would abort the surrounding transaction.
 */
export const migrate = (directory: string = migrationsDirectory) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(
      Effect.zipRight(
        sql`select pg_advisory_xact_lock(${MIGRATION_LOCK})`.pipe(
          Effect.zipRight(sql`create table if not exists schema_migrations (
            migration_id integer primary key,
            created_at timestamptz not null default now(),
            name text not null
          )`)
        ),
        run({ loader: sqlFileLoader(directory), table: "schema_migrations" })
      )
    )
  })
