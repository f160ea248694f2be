import type { Database } from './database.js'

/**
 * Ordered, append-only schema migrations. Each runs once in its own transaction; the applied
 * versions are recorded in schema_migrations.
 */
const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'items, event log, api tokens',
    sql: `
      CREATE TABLE items (
        part_number text COLLATE "C" PRIMARY KEY,
        description text NOT NULL DEFAULT '',
        item_type text NOT NULL,
        properties jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX items_item_type ON items (item_type, part_number);

      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        part_number text,
        data jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_created_at ON events (created_at);

      -- The highest id retention has removed; a Last-Event-ID below it cannot be replayed.
      CREATE TABLE event_log_state (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        pruned_through bigint NOT NULL DEFAULT 0
      );
      INSERT INTO event_log_state DEFAULT VALUES;

      CREATE TABLE api_tokens (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
        token_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'revisions with files, bill of materials',
    sql: `
      -- A revision with a file is inserted 'pending' (reserving its number and object key) before
      -- the upload starts and turns 'complete' with its event; readers only see complete ones.
      CREATE TABLE revisions (
        part_number text COLLATE "C" NOT NULL REFERENCES items (part_number) ON DELETE CASCADE,
        revision_number integer NOT NULL CHECK (revision_number > 0),
        status text NOT NULL DEFAULT 'complete' CHECK (status IN ('pending', 'complete')),
        comment text NOT NULL DEFAULT '',
        properties jsonb NOT NULL DEFAULT '{}'::jsonb,
        file_key text,
        file_name text,
        file_size bigint,
        file_sha256 text,
        content_type text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (part_number, revision_number)
      );
      CREATE INDEX revisions_pending ON revisions (created_at) WHERE status = 'pending';

      -- A child in use cannot be deleted (RESTRICT); a deleted parent takes its BOM with it.
      CREATE TABLE bom_lines (
        parent text COLLATE "C" NOT NULL REFERENCES items (part_number) ON DELETE CASCADE,
        child text COLLATE "C" NOT NULL REFERENCES items (part_number) ON DELETE RESTRICT,
        quantity numeric NOT NULL CHECK (quantity > 0),
        reference_designators text[] NOT NULL DEFAULT '{}',
        PRIMARY KEY (parent, child),
        CHECK (parent <> child)
      );
      CREATE INDEX bom_lines_child ON bom_lines (child);
    `,
  },
  {
    version: 3,
    name: 'fleet-wide settings',
    sql: `
      -- Settings every replica follows; read at start-up and on NOTIFY silo_settings.
      CREATE TABLE fleet_settings (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        read_only boolean NOT NULL DEFAULT false,
        changed_by text NOT NULL DEFAULT '',
        changed_at timestamptz NOT NULL DEFAULT now()
      );
      INSERT INTO fleet_settings DEFAULT VALUES;
    `,
  },
  {
    version: 4,
    name: 'token expiry',
    sql: `
      -- NULL: the token never expires. Revocation stays a DELETE.
      ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz;
    `,
  },
  {
    version: 5,
    name: 'item versions',
    sql: `
      -- Every change to an item adds one; If-Match compares against it (README, "API").
      ALTER TABLE items ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version > 0);
    `,
  },
  {
    version: 6,
    name: 'who did what',
    sql: `
      -- An actor as the API shows it, {token_id, name}; NULL on rows from before this version.
      ALTER TABLE items ADD COLUMN created_by jsonb;
      ALTER TABLE items ADD COLUMN updated_by jsonb;
      ALTER TABLE revisions ADD COLUMN created_by jsonb;
      ALTER TABLE api_tokens ADD COLUMN created_by jsonb;

      -- A revoked token's row is deleted (that is what ends its rights); who revoked it stays.
      CREATE TABLE token_revocations (
        token_id bigint NOT NULL,
        name text NOT NULL,
        role text NOT NULL,
        revoked_by jsonb NOT NULL,
        revoked_at timestamptz NOT NULL DEFAULT now()
      );

      -- An item's history: its events, newest first.
      CREATE INDEX events_part_number ON events (part_number, id);
    `,
  },
  {
    version: 7,
    name: 'browser sessions',
    // A session is a token's right handed to a browser as a cookie: only the cookie's hash is
    // stored, and revoking the token removes its sessions with it.
    sql: `
      CREATE TABLE sessions (
        id_hash text PRIMARY KEY,
        token_id bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX sessions_token_id ON sessions (token_id);
      CREATE INDEX sessions_expires_at ON sessions (expires_at);
    `,
  },
]

export async function migrate(db: Database): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`)
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations')
  const applied = new Set(rows.map((r) => Number(r.version)))
  for (const migration of MIGRATIONS) {
    if (applied.has(migration.version)) continue
    await db.transaction(async (tx) => {
      // Several replicas may start at once; the lock makes one of them migrate.
      await tx.query('SELECT pg_advisory_xact_lock(5110)')
      const again = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [
        migration.version,
      ])
      if (again.rows.length > 0) return
      for (const statement of splitStatements(migration.sql)) await tx.query(statement)
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ])
    })
  }
}

// Migrations hold no string literals with semicolons or dashes, so stripping comments and
// splitting on semicolons is exact here.
function splitStatements(sql: string): string[] {
  return sql
    .replace(/--[^\n]*/g, '')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}
