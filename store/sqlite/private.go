package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nudge/nudge"

	msqlite "modernc.org/sqlite"
)

// OpenPrivate opens (creating if need be) the database file at path for a
// throwaway store that only this DB uses, such as the simulator's. Reads
// and writes share one connection, which holds the file's lock for as
// long as it is open: no read starts by checking for another writer's
// changes or waits for a page cache another connection invalidated, and
// nothing is synced to disk (a crash leaves the file unusable, which a
// throwaway store does not mind). Queries run one at a time. Its
// transactions are savepoints of one transaction that Close commits
// (savepoint.go): a transaction's end writes nothing to the file. Its
// inbox is kept in memory (private_inbox.go), not in the file. Like Open,
// it does not migrate.
func OpenPrivate(path string) (*DB, error) {
	if err := checkPath(path); err != nil {
		return nil, err
	}
	// The rollback journal is kept in memory (a transaction that fails
	// still rolls back); locking_mode EXCLUSIVE keeps the file locked and
	// the page cache valid between transactions; mmap serves reads of
	// pages the cache does not hold. The page cache stays at SQLite's
	// default size, as in Open: the pager scans its whole hash table at
	// the end of every write transaction, which is also why the store is
	// not an in-memory database (whose cache is the whole database).
	dsn := path + common +
		"&_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)&_pragma=locking_mode(EXCLUSIVE)&_txlock=immediate"
	base, err := msqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	inbox := &memInbox{}
	conn := sql.OpenDB(privateConnector{base, inbox})
	// The one connection holds the lock and the only copy of the
	// journal: it must not be closed or replaced while the store is open.
	if err := oneConnection(conn, path); err != nil {
		return nil, err
	}
	return &DB{path: path, write: conn, read: conn, private: true, inbox: inbox, stmts: map[string]*sql.Stmt{}, readStmts: map[string]*sql.Stmt{}}, nil
}

// slimIndexes are the indexes that only the console's pages, the reports,
// delivery and pruning read: no query of the engine's claims, commits and
// guardrail reads, of ingest, or of the simulator's report uses one (each
// has another index or the primary key to go by, and none is named in an
// INDEXED BY). Contacts by email, phone, stage, creation and update;
// messages by channel, status, journey, creation and provider id, and by
// contact and id (the guardrails' reads use contact and creation time);
// decisions by contact and journey; enrollments by journey; events by
// reception; the ledger by address; a message's status history.
var slimIndexes = []string{
	"contacts_created_at", "contacts_email", "contacts_phone", "contacts_lifecycle_stage", "contacts_journey_stage",
	"contacts_updated_at",
	"messages_channel_created", "messages_contact", "messages_created", "messages_journey_created", "messages_provider",
	"messages_status_created",
	"decisions_contact", "decisions_journey",
	"enrollments_journey",
	"events_received_at",
	"consent_ledger_address",
	"message_statuses_message",
}

// slimTriggers keep the contacts' stage history (migration 0010) and the
// report counters (0013) for the changes EngineCommit does not count.
var slimTriggers = []string{
	"contacts_stage_insert", "contacts_stage_update", "contacts_stage_delete",
	"report_enrollment_delete", "report_decision_delete", "report_message_delete",
}

// Slim makes a migrated private store (OpenPrivate) cheaper to write, for
// a reader that runs the engine and reads back decisions, enrollments and
// messages, as the simulator does: it drops the indexes that only the
// console and the reports read (slimIndexes), and stops keeping what only
// reports read, the report counters and the contacts' stage history.
// Every row the engine writes is still written and every constraint still
// holds: the engine decides the same, at less cost per row. The reports of
// a slim store are wrong; it is not for a server. Slimming again is a no-op.
func (db *DB) Slim(ctx context.Context) error {
	if !db.private {
		return errors.New("sqlite: slim: only a private store (OpenPrivate) can be slimmed")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, name := range slimIndexes {
			if _, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS `+name); err != nil {
				return err
			}
		}
		for _, name := range slimTriggers {
			if _, err := tx.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: slim: %w", err)
	}
	db.noReports = true
	return nil
}

// DecisionTally calls fn with every decision, in id order, read in one
// statement with only what a tally of outcomes counts: its contact,
// journey, step, channel, outcome and reason. The simulator's totals read
// it instead of DecisionList, which decodes every decision's message and
// details. fn must not keep d, which the next row reuses.
func (db *DB) DecisionTally(ctx context.Context, fn func(d *nudge.Decision)) error {
	st, err := db.readStmt(ctx, `SELECT contact_id, journey_id, step_id, channel, outcome, reason FROM decisions ORDER BY id`)
	if err != nil {
		return fmt.Errorf("sqlite: decision tally: %w", err)
	}
	rows, err := st.QueryContext(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: decision tally: %w", err)
	}
	defer rows.Close()
	var d nudge.Decision
	for rows.Next() {
		if err := rows.Scan(&d.ContactID, &d.JourneyID, &d.StepID, &d.Channel, &d.Outcome, &d.Reason); err != nil {
			return fmt.Errorf("sqlite: decision tally: %w", err)
		}
		fn(&d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: decision tally: %w", err)
	}
	return nil
}
