import CustodyCore
package import CustodyStorage
import Foundation
import GRDB

extension RegistryDatabase {
    /// The schema, one migration per change; migrations use SQL, never the record types, so that they stay valid
    /// as the records evolve.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: models, versions, files, blobs, signatures, provenance, tokens, events") { db in
            try db.execute(
                sql: """
                    CREATE TABLE blobs (
                        digest TEXT PRIMARY KEY NOT NULL,
                        size INTEGER NOT NULL CHECK (size >= 0),
                        created_at TEXT NOT NULL
                    );
                    CREATE TABLE models (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        namespace TEXT NOT NULL,
                        name TEXT NOT NULL,
                        created_at TEXT NOT NULL,
                        UNIQUE (namespace, name)
                    );
                    CREATE TABLE versions (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        model_id INTEGER NOT NULL REFERENCES models(id),
                        version TEXT NOT NULL,
                        bundle_digest TEXT NOT NULL,
                        license_id TEXT,
                        license_name TEXT,
                        license_link TEXT,
                        published_by TEXT,
                        created_at TEXT NOT NULL,
                        UNIQUE (model_id, version)
                    );
                    CREATE INDEX versions_by_digest ON versions(bundle_digest);
                    CREATE TABLE files (
                        version_id INTEGER NOT NULL REFERENCES versions(id),
                        path TEXT NOT NULL,
                        size INTEGER NOT NULL,
                        digest TEXT NOT NULL REFERENCES blobs(digest),
                        position INTEGER NOT NULL,
                        PRIMARY KEY (version_id, path)
                    );
                    CREATE INDEX files_by_digest ON files(digest);
                    CREATE TABLE signatures (
                        version_id INTEGER NOT NULL REFERENCES versions(id),
                        kind TEXT NOT NULL CHECK (kind IN ('publisher', 'registry')),
                        status TEXT NOT NULL,
                        key_name TEXT,
                        key_hint TEXT,
                        bundle BLOB,
                        PRIMARY KEY (version_id, kind)
                    );
                    CREATE TABLE provenance (
                        version_id INTEGER PRIMARY KEY NOT NULL REFERENCES versions(id),
                        source_uri TEXT,
                        source_revision TEXT,
                        pipeline_run TEXT,
                        base_models TEXT NOT NULL,
                        datasets TEXT NOT NULL,
                        annotations TEXT NOT NULL
                    );
                    CREATE TABLE tokens (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT,
                        secret_hash TEXT NOT NULL UNIQUE,
                        role TEXT NOT NULL,
                        namespaces TEXT NOT NULL,
                        environments TEXT NOT NULL,
                        created_at TEXT NOT NULL,
                        expires_at TEXT,
                        revoked_at TEXT
                    );
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        at TEXT NOT NULL,
                        type TEXT NOT NULL,
                        actor TEXT,
                        model TEXT,
                        version TEXT,
                        detail TEXT
                    );
                    CREATE INDEX events_by_model ON events(model, version);
                    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
                        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
                        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                    """)
        }
        migrator.registerMigration("v2: scan results") { db in
            try db.execute(
                sql: """
                    ALTER TABLE versions ADD COLUMN scan_verdict TEXT;
                    CREATE TABLE scan_results (
                        version_id INTEGER NOT NULL REFERENCES versions(id),
                        path TEXT NOT NULL,
                        format TEXT NOT NULL,
                        verdict TEXT NOT NULL,
                        invalid TEXT,
                        report TEXT NOT NULL,
                        PRIMARY KEY (version_id, path)
                    );
                    CREATE INDEX scan_results_by_verdict ON scan_results(verdict);
                    """)
        }
        migrator.registerMigration("v3: version status, advisories, event environment and client") { db in
            try db.execute(
                sql: """
                    ALTER TABLE versions ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
                    ALTER TABLE versions ADD COLUMN status_reason TEXT;
                    ALTER TABLE versions ADD COLUMN status_by TEXT;
                    ALTER TABLE versions ADD COLUMN status_at TEXT;
                    ALTER TABLE events ADD COLUMN environment TEXT;
                    ALTER TABLE events ADD COLUMN client TEXT;
                    CREATE INDEX events_by_type ON events(type);
                    CREATE TABLE advisories (
                        id TEXT PRIMARY KEY NOT NULL,
                        modified TEXT NOT NULL,
                        withdrawn TEXT,
                        severity TEXT NOT NULL,
                        score REAL,
                        summary TEXT,
                        models TEXT NOT NULL,
                        document BLOB NOT NULL,
                        recorded_at TEXT NOT NULL,
                        updated_at TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v4: transparency log") { db in
            try db.execute(
                sql: """
                    CREATE TABLE log_nodes (
                        level INTEGER NOT NULL,
                        idx INTEGER NOT NULL,
                        hash BLOB NOT NULL,
                        PRIMARY KEY (level, idx)
                    ) WITHOUT ROWID;
                    CREATE TABLE checkpoints (
                        size INTEGER PRIMARY KEY NOT NULL,
                        root BLOB NOT NULL,
                        note TEXT NOT NULL,
                        created_at TEXT NOT NULL
                    );
                    CREATE TRIGGER log_nodes_are_append_only_update BEFORE UPDATE ON log_nodes
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER log_nodes_are_append_only_delete BEFORE DELETE ON log_nodes
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER checkpoints_are_append_only_update BEFORE UPDATE ON checkpoints
                        BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
                    CREATE TRIGGER checkpoints_are_append_only_delete BEFORE DELETE ON checkpoints
                        BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
                    """)
            // Events recorded before the log existed become its first leaves in v6, which stores the log as it is kept now.
        }
        migrator.registerMigration("v5: history indexes") { db in
            // A model's history and a type's events are read in log order, a page at a time.
            try db.execute(
                sql: """
                    CREATE INDEX events_by_model_id ON events(model, id);
                    DROP INDEX events_by_type;
                    CREATE INDEX events_by_type_id ON events(type, id);
                    """)
        }
        migrator.registerMigration("v6: append-friendly log") { db in
            // Log hashes keyed by post-order position instead of (level, index): appends then extend one B-tree at its
            // end instead of touching the last page of every level, which made each commit write a page per level.
            try db.execute(
                sql: """
                    CREATE TABLE log_tree (
                        position INTEGER PRIMARY KEY NOT NULL,
                        hash BLOB NOT NULL
                    );
                    """)
            let insert = try db.makeStatement(sql: "INSERT INTO log_tree (position, hash) VALUES (?, ?)")
            let nodes = try Row.fetchCursor(db, sql: "SELECT level, idx, hash FROM log_nodes")
            while let node = try nodes.next() {
                let level: Int = node["level"]
                let index: Int64 = node["idx"]
                let hash: Data = node["hash"]
                try insert.execute(arguments: [Int64(Merkle.storagePosition(level: level, index: UInt64(index))), hash])
            }
            // Events recorded before the log existed become its first leaves.
            let leaves = try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM log_nodes WHERE level = 0") ?? 0
            let unlogged = try Row.fetchCursor(db, sql: "SELECT * FROM events WHERE id > ? ORDER BY id", arguments: [leaves])
            while let row = try unlogged.next() {
                // The frozen V1 leaf of the row as it was then (events had no count yet): never today's encoder.
                let id: Int64 = row["id"]
                try RegistryDatabase.appendLeaf(
                    db, index: UInt64(id - 1),
                    EventLeaf.V1(
                        id: row["id"], at: row["at"], type: row["type"], actor: row["actor"], model: row["model"], version: row["version"],
                        detail: row["detail"], environment: row["environment"], client: row["client"]))
            }
            try db.execute(
                sql: """
                    DROP TRIGGER log_nodes_are_append_only_update;
                    DROP TRIGGER log_nodes_are_append_only_delete;
                    DROP TABLE log_nodes;
                    CREATE TRIGGER log_tree_is_append_only_update BEFORE UPDATE ON log_tree
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    CREATE TRIGGER log_tree_is_append_only_delete BEFORE DELETE ON log_tree
                        BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
                    """)
        }
        migrator.registerMigration("v7: event counts") { db in
            // Repeats of a gate decision within the repeat window are one event with their count.
            try db.execute(sql: "ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1)")
        }
        migrator.registerMigration("v8: the log assigns leaf indexes") { db in
            // Leaf indexes come from the log's head row, read and advanced inside the appending transaction (the log's
            // lock), not from row ids: a sequence or autoincrement leaves gaps on rollback and, with several writers,
            // commits out of order. Until now every leaf index was `id - 1`, which this records as the column.
            try db.execute(
                sql: """
                    DROP TRIGGER events_are_append_only_update;
                    ALTER TABLE events ADD COLUMN leaf_index INTEGER;
                    UPDATE events SET leaf_index = id - 1;
                    CREATE UNIQUE INDEX events_by_leaf_index ON events(leaf_index);
                    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
                        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
                    CREATE TRIGGER events_have_leaf_indexes BEFORE INSERT ON events WHEN NEW.leaf_index IS NULL
                        BEGIN SELECT RAISE(ABORT, 'an event needs its leaf index from the log head'); END;
                    CREATE TABLE log_head (
                        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
                        size INTEGER NOT NULL CHECK (size >= 0)
                    );
                    INSERT INTO log_head (only_row, size) SELECT 1, COUNT(*) FROM events;
                    CREATE TRIGGER log_head_only_grows BEFORE UPDATE ON log_head WHEN NEW.size < OLD.size
                        BEGIN SELECT RAISE(ABORT, 'the log head only grows'); END;
                    CREATE TRIGGER log_head_is_kept BEFORE DELETE ON log_head
                        BEGIN SELECT RAISE(ABORT, 'the log head is kept'); END;
                    """)
        }
        migrator.registerMigration("v9: OCI manifests") { db in
            // Manifests are kept as their exact bytes (their digest); a model version's is either pushed or generated.
            // References record the blobs (and, for an index, manifests) each one names: blob access and mounts ask them.
            try db.execute(
                sql: """
                    CREATE TABLE oci_manifests (
                        repository TEXT NOT NULL,
                        digest TEXT NOT NULL,
                        media_type TEXT NOT NULL,
                        artifact_type TEXT,
                        subject TEXT,
                        kind TEXT NOT NULL CHECK (kind IN ('model', 'attachment', 'referrer', 'artifact')),
                        version TEXT,
                        annotations TEXT NOT NULL,
                        bytes BLOB NOT NULL,
                        created_at TEXT NOT NULL,
                        PRIMARY KEY (repository, digest)
                    );
                    CREATE INDEX oci_manifests_by_version ON oci_manifests(repository, version, kind);
                    CREATE INDEX oci_manifests_by_subject ON oci_manifests(repository, subject) WHERE subject IS NOT NULL;
                    CREATE TABLE oci_references (
                        repository TEXT NOT NULL,
                        manifest TEXT NOT NULL,
                        digest TEXT NOT NULL,
                        PRIMARY KEY (repository, manifest, digest)
                    ) WITHOUT ROWID;
                    CREATE INDEX oci_references_by_digest ON oci_references(digest);
                    CREATE TABLE oci_tags (
                        repository TEXT NOT NULL,
                        tag TEXT NOT NULL,
                        digest TEXT NOT NULL,
                        PRIMARY KEY (repository, tag)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v10: upload heartbeats") { db in
            try db.execute(sql: "CREATE TABLE upload_heartbeats (upload_id TEXT PRIMARY KEY, touched_at INTEGER NOT NULL) WITHOUT ROWID")
        }
        return migrator
    }
}
