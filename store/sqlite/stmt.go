package sqlite

import (
	"context"
	"database/sql"
	"strings"
)

// Statements are prepared once and kept: with modernc.org/sqlite, parsing
// and planning a statement costs more than running a small one. The writer
// has one connection, so a statement prepared on it is prepared on the
// connection every write transaction holds, and tx.StmtContext re-uses it
// there without preparing again. A transaction holds that one connection,
// so the writer's statements are all prepared before the first transaction
// that needs them (writeStmts), never inside one.

// maxBatchRows is the most rows one multi-row statement carries. A batch of
// n rows runs as statements of power-of-two row counts, largest first (the
// binary digits of n below maxBatchRows), so that a few prepared statements
// serve every n.
const maxBatchRows = 128

// batchSizes is the number of multi-row statements of one kind: 1, 2, 4,
// ..., maxBatchRows rows.
const batchSizes = 8

// rowsQuery builds a multi-row statement's text for n rows.
type rowsQuery func(n int) string

// valuesRows returns n rows of cols placeholders each: "(?, ?), (?, ?)".
func valuesRows(n, cols int) string {
	return repeatRow(n, "("+placeholders(cols)+")")
}

// repeatRow returns n copies of a row, separated by commas.
func repeatRow(n int, row string) string {
	return strings.Repeat(row+", ", n-1) + row
}

// rowOrEmpty returns a row of cols placeholders, "(?, ?, …)", with
// coalesce(?, ”) at the (0-based) columns orEmpty, whose value is bound
// as NULL when it is empty (nullString): modernc's driver copies every
// text it binds into memory of its C heap, an empty one too, and the
// engine's commits bind several empty ones a row.
func rowOrEmpty(cols int, orEmpty ...int) string {
	ps := make([]string, cols)
	for i := range ps {
		ps[i] = "?"
	}
	for _, i := range orEmpty {
		ps[i] = "coalesce(?, '')"
	}
	return "(" + strings.Join(ps, ", ") + ")"
}

// writeStmts are the statements of the write paths, prepared on the writer.
type writeStmts struct {
	contactsGet      *sql.Stmt // the contacts of a JSON array of ids
	contactsPut      []*sql.Stmt
	inboxAddContacts *sql.Stmt

	contactAddresses *sql.Stmt // ids and addresses of a JSON array of contact ids
	consentStates    *sql.Stmt // the states of a JSON array of address hashes
	ledgerInsert     []*sql.Stmt
	stateUpsert      []*sql.Stmt

	inboxClaim, inboxItems, enrollmentsClaimDue            *sql.Stmt
	enrollmentsClaimDueIDs                                 *sql.Stmt
	enrollmentsRelease                                     *sql.Stmt
	enrollmentsInsert, enrollmentsUpdate                   []*sql.Stmt
	decisionsInsert, messagesInsert                        []*sql.Stmt
	messagesHistory, messagesCancelHistory, messagesCancel *sql.Stmt
	inboxDelete                                            *sql.Stmt

	messagesClaim, messagesRead    *sql.Stmt
	messagesUpdate, statusesInsert []*sql.Stmt

	inbox *memInbox // the DB's, if in memory

	report reportStmts // the counters' statements of EngineCommit
	status statusStmts // and of MessageUpdate
}

// writeStmts returns the writer's statements, preparing them on first use.
// It must not be called while the caller holds a write transaction.
func (db *DB) writeStmts(ctx context.Context) (*writeStmts, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if db.ws != nil {
		return db.ws, nil
	}
	var (
		ws    writeStmts
		first error
	)
	one := func(q string) *sql.Stmt {
		if first != nil {
			return nil
		}
		s, err := db.write.PrepareContext(ctx, q)
		if err != nil {
			first = err
			return nil
		}
		db.stmts[q] = s
		return s
	}
	many := func(q rowsQuery) []*sql.Stmt {
		ss := make([]*sql.Stmt, batchSizes)
		for k := range ss {
			ss[k] = one(q(1 << k))
		}
		return ss
	}
	ws.contactsGet = one(`SELECT ` + contactColumns + ` FROM contacts WHERE id IN (SELECT value FROM json_each(?))`)
	ws.contactsPut = many(contactsPutQuery)
	ws.inboxAddContacts = one(inboxAddContactsQuery)
	ws.contactAddresses = one(contactAddressesQuery)
	ws.consentStates = one(consentStatesQuery)
	ws.ledgerInsert = many(ledgerInsertQuery)
	ws.stateUpsert = many(stateUpsertQuery)
	ws.inboxClaim = one(inboxClaimQuery)
	ws.inboxItems = one(`SELECT i.seq, i.contact_id, i.at, i.contact_before, i.contact_after, e.` + strings.ReplaceAll(eventColumns, ", ", ", e.") + `
		FROM inbox i LEFT JOIN events e ON e.seq = i.event_seq
		WHERE i.seq IN (SELECT value FROM json_each(?)) ORDER BY i.seq`)
	ws.enrollmentsClaimDue = one(enrollmentsClaimDueQuery)
	ws.enrollmentsClaimDueIDs = one(enrollmentsClaimDueIDsQuery)
	ws.enrollmentsInsert = many(enrollmentsInsertQuery)
	ws.enrollmentsUpdate = many(enrollmentsUpdateQuery)
	ws.enrollmentsRelease = one(enrollmentsReleaseQuery)
	ws.decisionsInsert = many(decisionsInsertQuery)
	ws.messagesInsert = many(messagesInsertQuery)
	ws.messagesHistory = one(messagesHistoryQuery)
	ws.messagesCancelHistory = one(messagesCancelHistoryQuery)
	ws.messagesCancel = one(messagesCancelQuery)
	ws.messagesClaim = one(messagesClaimQuery)
	ws.messagesRead = one(messagesReadQuery)
	ws.messagesUpdate = many(messagesUpdateQuery)
	ws.statusesInsert = many(statusesInsertQuery)
	ws.inboxDelete = one(inboxDeleteQuery)
	ws.report = reportStmts{
		enrollments: one(reportEnrollmentsQuery), decisions: one(reportDecisionsQuery), inserted: one(reportInsertedQuery),
		queued:  one(reportQueuedQuery),
		cohorts: one(reportCohortsAddQuery), outcomes: one(reportOutcomesAddQuery), paths: one(reportPathsAddQuery),
		messages: one(reportMessagesAddQuery), conversionsDelete: one(reportConversionsDeleteQuery),
		conversionsPut: one(reportConversionsPutQuery),
	}
	ws.status = statusStmts{messages: ws.report.messages, touches: one(reportTouchesQuery)}
	ws.inbox = db.inbox
	if first != nil {
		return nil, first
	}
	db.ws = &ws
	return db.ws, nil
}

// execRows runs a multi-row statement over args, cols of them a row, in
// row order. fn, if not nil, is called with each row the statements return.
func execRows(ctx context.Context, tx *sql.Tx, stmts []*sql.Stmt, cols int, args []any, fn func(*sql.Rows) error) error {
	n := len(args) / cols
	for off := 0; off < n; {
		k := batchSizes - 1
		for 1<<k > n-off {
			k--
		}
		rows := 1 << k
		a := args[off*cols : (off+rows)*cols]
		off += rows
		s := tx.StmtContext(ctx, stmts[k])
		if fn == nil {
			if _, err := s.ExecContext(ctx, a...); err != nil {
				return err
			}
			continue
		}
		rs, err := s.QueryContext(ctx, a...)
		if err != nil {
			return err
		}
		for rs.Next() {
			if err := fn(rs); err != nil {
				rs.Close()
				return err
			}
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
	}
	return nil
}

// execEach runs a multi-row statement over args, cols of them a row, in
// row order, and calls fn with each statement's row count and result.
func execEach(ctx context.Context, tx *sql.Tx, stmts []*sql.Stmt, cols int, args []any, fn func(rows int, r sql.Result) error) error {
	n := len(args) / cols
	for off := 0; off < n; {
		k := batchSizes - 1
		for 1<<k > n-off {
			k--
		}
		rows := 1 << k
		r, err := tx.StmtContext(ctx, stmts[k]).ExecContext(ctx, args[off*cols:(off+rows)*cols]...)
		if err != nil {
			return err
		}
		if err := fn(rows, r); err != nil {
			return err
		}
		off += rows
	}
	return nil
}

// readStmt returns a statement prepared on the read pool, cached by its
// text. Only statements of a bounded set of texts may use it.
func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	defer db.stmtMu.Unlock()
	if s, ok := db.readStmts[query]; ok {
		return s, nil
	}
	s, err := db.read.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.readStmts[query] = s
	return s, nil
}
