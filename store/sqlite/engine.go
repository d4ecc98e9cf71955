package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ nudge.EngineStore = (*DB)(nil)

// jsonArray encodes ids as a JSON array, for json_each: one parameter
// whatever the number of ids.
func jsonArray[T any](ids []T) (string, error) {
	b, err := json.Marshal(ids)
	return string(b), err
}

// contactChange is a contact change for the engine's inbox: the contact as
// it was (nil: the change created it) and as the change left it.
type contactChange struct {
	ID     string         `json:"id"`
	Before *nudge.Contact `json:"before,omitempty"`
	After  *nudge.Contact `json:"after"`
}

// contactChanges are the changes patches made, given each patch's result
// and the contact it found (see applyPatches): one per contact created or
// changed, from before its first patch to after its last, in the order of
// its first change.
func contactChanges(results []nudge.ContactMergeResult, befores []*nudge.Contact) []contactChange {
	var out []contactChange
	at := map[string]int{} // contact id: its index in out
	for i, r := range results {
		id := r.Contact.ID
		if k, ok := at[id]; ok {
			out[k].After = r.Contact
			continue
		}
		if b := befores[i]; b == nil || !sameContact(b, r.Contact) {
			at[id] = len(out)
			out = append(out, contactChange{ID: id, Before: b, After: r.Contact})
		}
	}
	return out
}

// inboxAddContacts leaves contact changes in the engine's inbox, in the
// transaction of the change.
func inboxAddContacts(ctx context.Context, tx *sql.Tx, ws *writeStmts, changes []contactChange, now time.Time) error {
	if len(changes) == 0 {
		return nil
	}
	if ws.inbox != nil {
		return ws.inbox.addChanges(changes, micros(now))
	}
	arr, err := jsonArray(changes)
	if err != nil {
		return err
	}
	_, err = tx.StmtContext(ctx, ws.inboxAddContacts).ExecContext(ctx, micros(now), arr)
	return err
}

const inboxAddContactsQuery = `INSERT INTO inbox (contact_id, at, contact_before, contact_after)
	SELECT value ->> 'id', ?, value -> 'before', value -> 'after' FROM json_each(?) ORDER BY key`

func checkLease(lease time.Duration) error {
	if lease <= 0 {
		return nudge.FieldErrorf("lease", "%v is not a positive duration", lease)
	}
	return nil
}

// InboxClaim claims up to limit (default 100, at most 10000) inbox items
// that are not claimed or whose claim expired before now, oldest first,
// until now+lease. An item of an event comes with its event; one whose
// event was pruned since comes without, as if it were a contact change.
// The writer connection serializes claims: no item goes to two claims.
func (db *DB) InboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.InboxItem, error) {
	if err := checkLease(lease); err != nil {
		return nil, err
	}
	n := limitOf(limit)
	if db.inbox != nil {
		return db.inbox.claim(now, n, lease)
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: inbox claim: %w", err)
	}
	var items []*nudge.InboxItem
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, ws.inboxClaim).QueryContext(ctx, micros(now.Add(lease)), micros(now), n)
		if err != nil {
			return err
		}
		var seqs []int64
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, seq)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(seqs) == 0 {
			return err
		}
		arr, err := jsonArray(seqs)
		if err != nil {
			return err
		}
		rows, err = tx.StmtContext(ctx, ws.inboxItems).QueryContext(ctx, arr)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanInboxItem(rows)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: inbox claim: %w", err)
	}
	return items, nil
}

// InboxPending reports whether InboxClaim at now would claim an item: one
// not claimed, or whose claim expired before now. The engine asks it
// between the batches of a drain, to serve events first.
func (db *DB) InboxPending(ctx context.Context, now time.Time) (bool, error) {
	if db.inbox != nil {
		return db.inbox.pending(now), nil
	}
	st, err := db.readStmt(ctx, `SELECT EXISTS (SELECT 1 FROM inbox WHERE claimed_until IS NULL OR claimed_until < ?)`)
	if err != nil {
		return false, fmt.Errorf("sqlite: inbox pending: %w", err)
	}
	var pending bool
	if err := st.QueryRowContext(ctx, micros(now)).Scan(&pending); err != nil {
		return false, fmt.Errorf("sqlite: inbox pending: %w", err)
	}
	return pending, nil
}

func scanInboxItem(rows *sql.Rows) (*nudge.InboxItem, error) {
	var (
		it            nudge.InboxItem
		at            int64
		before, after sql.NullString
		seq, ts, rc   sql.NullInt64
		props, ectx   sql.NullString
		msgID, typ    sql.NullString
		cid, anon     sql.NullString
		name          sql.NullString
	)
	if err := rows.Scan(&it.Seq, &it.ContactID, &at, &before, &after,
		&seq, &msgID, &typ, &cid, &anon, &name, &props, &ectx, &ts, &rc); err != nil {
		return nil, err
	}
	it.At = fromMicros(at)
	for _, c := range []struct {
		col sql.NullString
		dst **nudge.Contact
	}{{before, &it.Before}, {after, &it.After}} {
		if c.col.Valid {
			if err := json.Unmarshal([]byte(c.col.String), c.dst); err != nil {
				return nil, fmt.Errorf("inbox item %d: contact: %w", it.Seq, err)
			}
			if (*c.dst).Attributes == nil {
				(*c.dst).Attributes = map[string]any{}
			}
		}
	}
	if !seq.Valid {
		return &it, nil
	}
	e := &nudge.Event{Seq: seq.Int64, MessageID: msgID.String, Type: typ.String, ContactID: cid.String,
		AnonymousID: anon.String, Name: name.String, Timestamp: fromMicros(ts.Int64), ReceivedAt: fromMicros(rc.Int64)}
	if props.Valid {
		if err := json.Unmarshal([]byte(props.String), &e.Properties); err != nil {
			return nil, fmt.Errorf("event %d: properties: %w", e.Seq, err)
		}
	}
	if ectx.Valid {
		if err := json.Unmarshal([]byte(ectx.String), &e.Context); err != nil {
			return nil, fmt.Errorf("event %d: context: %w", e.Seq, err)
		}
	}
	it.Event = e
	return &it, nil
}

// limitOf applies the default and the cap of the engine's claims and lists.
func limitOf(n int) int { return limit(n, 100, 10000) }

const enrollmentColumns = `id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event,
	held_out, event, steps, entered_at, updated_at, ended_at, rev`

// scanEnrollment scans a row of enrollmentColumns, then of more, if any.
func scanEnrollment(s scanner, more ...any) (*nudge.Enrollment, error) {
	var (
		e                nudge.Enrollment
		wake, ended      sql.NullInt64
		event, steps     sql.NullString
		entered, updated int64
	)
	dst := make([]any, 0, 16+len(more))
	dst = append(dst, &e.ID, &e.JourneyID, &e.Version, &e.ContactID, &e.Key, &e.State, &e.StepID, &wake,
		&e.WaitEvent, &e.HeldOut, &event, &steps, &entered, &updated, &ended, &e.Rev)
	dst = append(dst, more...)
	if err := s.Scan(dst...); err != nil {
		return nil, err
	}
	if wake.Valid {
		e.WakeAt = fromMicros(wake.Int64)
	}
	if ended.Valid {
		e.EndedAt = fromMicros(ended.Int64)
	}
	e.EnteredAt, e.UpdatedAt = fromMicros(entered), fromMicros(updated)
	if event.Valid {
		if err := json.Unmarshal([]byte(event.String), &e.Event); err != nil {
			return nil, fmt.Errorf("enrollment %s: event: %w", e.ID, err)
		}
		e.Event.Timestamp, e.Event.ReceivedAt = e.Event.Timestamp.UTC(), e.Event.ReceivedAt.UTC()
	}
	if steps.Valid {
		var err error
		if e.Steps, err = decodeSteps(steps.String); err != nil {
			return nil, fmt.Errorf("enrollment %s: steps: %w", e.ID, err)
		}
	}
	return &e, nil
}

func scanEnrollments(rows *sql.Rows) ([]*nudge.Enrollment, error) {
	defer rows.Close()
	es := []*nudge.Enrollment{}
	for rows.Next() {
		e, err := scanEnrollment(rows)
		if err != nil {
			return nil, err
		}
		es = append(es, e)
	}
	return es, rows.Err()
}

// EnrollmentClaimDue claims up to limit (default 100, at most 10000)
// waiting enrollments of active journeys whose WakeAt is at or before now
// and whose claim, if any, expired before now, until now+lease. They come
// in WakeAt order, then by id. The writer connection serializes claims.
func (db *DB) EnrollmentClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.Enrollment, error) {
	if err := checkLease(lease); err != nil {
		return nil, err
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment claim due: %w", err)
	}
	var es []*nudge.Enrollment
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, ws.enrollmentsClaimDue).QueryContext(ctx, micros(now.Add(lease)), micros(now), limitOf(limit))
		if err != nil {
			return err
		}
		es, err = scanEnrollments(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment claim due: %w", err)
	}
	// RETURNING does not keep the order of the subquery.
	sortDue(es)
	return es, nil
}

// EnrollmentClaimDueIDs claims as EnrollmentClaimDue does, and returns
// the ids it claimed, in no order; EnrollmentsClaimed reads their rows.
// Split so, the writer's part of a claim is the update alone: the engine's
// drain reads the rows while the writer commits the batch before.
func (db *DB) EnrollmentClaimDueIDs(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]string, error) {
	if err := checkLease(lease); err != nil {
		return nil, err
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment claim due: %w", err)
	}
	var ids []string
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		return queryTx(ctx, tx, ws.enrollmentsClaimDueIDs, []any{micros(now.Add(lease)), micros(now), limitOf(limit)}, func(rows *sql.Rows) error {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment claim due: %w", err)
	}
	return ids, nil
}

// EnrollmentsClaimed returns the enrollments of ids that EnrollmentClaimDueIDs
// claimed at now for lease and that are still waiting under that claim,
// in WakeAt order, then by id. One changed or erased since is left out:
// its transition is not the wake's to make. With them it returns, by
// contact id, the live enrollments of their contacts as
// EnrollmentListLive does (each contact's by id; the claimed ones with
// their event and steps), which the engine's guardrails read anyway: one
// statement reads both, each row once.
func (db *DB) EnrollmentsClaimed(ctx context.Context, ids []string, now time.Time, lease time.Duration) ([]*nudge.Enrollment, map[string][]*nudge.Enrollment, error) {
	live := map[string][]*nudge.Enrollment{}
	if len(ids) == 0 {
		return nil, live, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: enrollments claimed: %w", err)
	}
	st, err := db.readStmt(ctx, enrollmentsClaimedQuery)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: enrollments claimed: %w", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	rows, err := st.QueryContext(ctx, arr, micros(now.Add(lease)))
	var es []*nudge.Enrollment
	err = scanRows(rows, err, func(rows *sql.Rows) error {
		var claimed bool
		e, err := scanEnrollment(rows, &claimed)
		if err != nil {
			return err
		}
		live[e.ContactID] = append(live[e.ContactID], e)
		if claimed && want[e.ID] {
			es = append(es, e)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: enrollments claimed: %w", err)
	}
	sortDue(es)
	return es, live, nil
}

// sortDue puts enrollments in claim order: by WakeAt, then by id.
func sortDue(es []*nudge.Enrollment) {
	slices.SortFunc(es, func(a, b *nudge.Enrollment) int {
		if c := a.WakeAt.Compare(b.WakeAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// EnrollmentList lists enrollments by id, up to p.Limit (default 100, at
// most 10000) after p.AfterID.
func (db *DB) EnrollmentList(ctx context.Context, p *nudge.EnrollmentListParams) ([]*nudge.Enrollment, error) {
	if p == nil {
		p = &nudge.EnrollmentListParams{}
	}
	w := where{}
	w.eq("journey_id", p.JourneyID)
	w.eq("contact_id", p.ContactID)
	if p.LiveOnly {
		w.add("state = 'waiting'")
	}
	if p.AfterID != "" {
		w.add("id > ?", p.AfterID)
	}
	// The filters make a few query texts: each is prepared once.
	st, err := db.readStmt(ctx, `SELECT `+enrollmentColumns+` FROM enrollments`+w.sql()+` ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list: %w", err)
	}
	rows, err := st.QueryContext(ctx, append(w.args, limitOf(p.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list: %w", err)
	}
	es, err := scanEnrollments(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list: %w", err)
	}
	return es, nil
}

// enrollmentsLiveQuery reads the live enrollments of a JSON array of
// contact ids, through the enrollments_contact index, without their event
// and steps.
const enrollmentsLiveQuery = `SELECT id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event,
		held_out, entered_at, updated_at, ended_at, rev FROM enrollments
	WHERE contact_id IN (SELECT value FROM json_each(?)) AND state = 'waiting'
	ORDER BY contact_id, id`

// EnrollmentListLive returns, by contact id, the live enrollments of the
// given contacts without their event and steps, each contact's ordered by
// id, in one statement.
func (db *DB) EnrollmentListLive(ctx context.Context, contactIDs []string) (map[string][]*nudge.Enrollment, error) {
	out := make(map[string][]*nudge.Enrollment, len(contactIDs))
	if len(contactIDs) == 0 {
		return out, nil
	}
	arr, err := jsonArray(contactIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list live: %w", err)
	}
	st, err := db.readStmt(ctx, enrollmentsLiveQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list live: %w", err)
	}
	rows, err := st.QueryContext(ctx, arr)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list live: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e                nudge.Enrollment
			wake, ended      sql.NullInt64
			entered, updated int64
		)
		if err := rows.Scan(&e.ID, &e.JourneyID, &e.Version, &e.ContactID, &e.Key, &e.State, &e.StepID, &wake,
			&e.WaitEvent, &e.HeldOut, &entered, &updated, &ended, &e.Rev); err != nil {
			return nil, fmt.Errorf("sqlite: enrollment list live: %w", err)
		}
		e.WakeAt, e.EndedAt = fromNullMicros(wake), fromNullMicros(ended)
		e.EnteredAt, e.UpdatedAt = fromMicros(entered), fromMicros(updated)
		out[e.ContactID] = append(out[e.ContactID], &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: enrollment list live: %w", err)
	}
	return out, nil
}

// EnrollmentGet returns an enrollment, or ENOTFOUND.
func (db *DB) EnrollmentGet(ctx context.Context, id string) (*nudge.Enrollment, error) {
	st, err := db.readStmt(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id = ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get: %w", err)
	}
	e, err := scanEnrollment(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = nudge.Errorf(nudge.ENOTFOUND, "enrollment %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get: %w", err)
	}
	return e, nil
}

// EnrollmentGetMany returns, by id, the enrollments of ids that exist, in
// one statement.
func (db *DB) EnrollmentGetMany(ctx context.Context, ids []string) (map[string]*nudge.Enrollment, error) {
	out := make(map[string]*nudge.Enrollment, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get many: %w", err)
	}
	st, err := db.readStmt(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id IN (SELECT value FROM json_each(?))`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get many: %w", err)
	}
	rows, err := st.QueryContext(ctx, arr)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get many: %w", err)
	}
	es, err := scanEnrollments(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enrollment get many: %w", err)
	}
	for _, e := range es {
		out[e.ID] = e
	}
	return out, nil
}

// where builds the WHERE clause of a list.
type where struct {
	terms []string
	args  []any
}

func (w *where) add(term string, args ...any) {
	w.terms = append(w.terms, term)
	w.args = append(w.args, args...)
}

func (w *where) eq(col string, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

func (w *where) sql() string {
	if len(w.terms) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.terms, " AND ")
}

// Statements of the claims and of EngineCommit, prepared once on the writer.
const (
	inboxClaimQuery = `UPDATE inbox SET claimed_until = ?1
		WHERE seq IN (SELECT seq FROM inbox WHERE claimed_until IS NULL OR claimed_until < ?2 ORDER BY seq LIMIT ?3)
		RETURNING seq`
	enrollmentsClaimDueQuery    = enrollmentsClaimDueUpdate + ` RETURNING ` + enrollmentColumns
	enrollmentsClaimDueIDsQuery = enrollmentsClaimDueUpdate + ` RETURNING id`
	enrollmentsClaimDueUpdate   = `UPDATE enrollments SET claimed_until = ?1
		WHERE id IN (
			SELECT e.id FROM enrollments e JOIN journeys j ON j.id = e.journey_id
			WHERE e.state = 'waiting' AND e.wake_at <= ?2 AND j.status = 'active'
				AND (e.claimed_until IS NULL OR e.claimed_until < ?2)
			ORDER BY e.wake_at, e.id LIMIT ?3)`
	// enrollmentsClaimedQuery reads the live enrollments of the contacts
	// of a JSON array of ids, each contact's by id, and says which are
	// still waiting under the claim until ?2; only those come with their
	// event and steps.
	enrollmentsClaimedQuery = `SELECT id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event,
			held_out, iif(claimed_until IS ?2, event, NULL), iif(claimed_until IS ?2, steps, NULL),
			entered_at, updated_at, ended_at, rev, claimed_until IS ?2
		FROM enrollments
		WHERE contact_id IN (SELECT contact_id FROM enrollments WHERE id IN (SELECT value FROM json_each(?1)))
			AND state = 'waiting'
		ORDER BY contact_id, id`

	enrollmentsReleaseQuery = `UPDATE enrollments SET claimed_until = NULL
		WHERE id IN (SELECT value FROM json_each(?)) AND claimed_until IS NOT NULL`
	// The unary + keeps the planner off messages_status_created, which
	// would visit every queued message of the outbox. Only queued messages are
	// cancelled: one a worker moved to sending may be at the provider
	// already. The history entries go first, while the messages are still
	// queued.
	messagesCancelHistoryQuery = `INSERT INTO message_statuses (message_id, status, at)
		SELECT id, 'cancelled', ?1 FROM messages
		WHERE enrollment_id IN (SELECT value FROM json_each(?2)) AND +status = 'queued'`
	messagesCancelQuery = `UPDATE messages SET status = 'cancelled', updated_at = ?1, claimed_until = NULL
		WHERE enrollment_id IN (SELECT value FROM json_each(?2)) AND +status = 'queued'`
	// messagesHistoryQuery writes the first history entry of the messages
	// just inserted, from the first rowid to the last, in id order (ids
	// sort in creation order).
	messagesHistoryQuery = `INSERT INTO message_statuses (message_id, status, at)
		SELECT id, status, created_at FROM messages WHERE rowid BETWEEN ?1 AND ?2 ORDER BY id`
	inboxDeleteQuery = `DELETE FROM inbox WHERE seq IN (SELECT value FROM json_each(?))`
)

const (
	enrollmentInsertColumns = 15
	enrollmentUpdateColumns = 17
	decisionInsertColumns   = 12
	messageInsertColumns    = 18
)

// enrollmentsInsertQuery inserts n enrollments at revision 1, skipping any
// whose id exists or that would be a second live enrollment (in the table
// or earlier in the statement), and returns the ids of those inserted.
func enrollmentsInsertQuery(n int) string {
	row := strings.TrimSuffix(rowOrEmpty(enrollmentInsertColumns, 4, 6, 8), ")") + ", 1)"
	return `INSERT INTO enrollments (id, journey_id, version, contact_id, key, state, step_id,
		wake_at, wait_event, held_out, event, steps, entered_at, updated_at, ended_at, rev)
		VALUES ` + repeatRow(n, row) + `
		ON CONFLICT DO NOTHING RETURNING id`
}

// enrollmentsUpdateQuery updates n enrollments, each only if its stored
// revision is the one given and, when its prior is given (p_state not
// NULL), its stored journey, version, entry time, held-out flag and state
// are the prior's, in the order given (the rows of v are the outer loop
// of the join). An id given twice is updated at most once.
func enrollmentsUpdateQuery(n int) string {
	return `WITH v (id, state, step_id, wake_at, wait_event, held_out, event, steps, entered_at, updated_at,
		ended_at, rev, p_journey, p_version, p_entered, p_held_out, p_state) AS (VALUES ` +
		repeatRow(n, rowOrEmpty(enrollmentUpdateColumns, 2, 4)) + `)
		UPDATE enrollments SET state = v.state, step_id = v.step_id, wake_at = v.wake_at,
			wait_event = v.wait_event, held_out = v.held_out, event = v.event, steps = v.steps,
			entered_at = v.entered_at, updated_at = v.updated_at, ended_at = v.ended_at,
			rev = enrollments.rev + 1, claimed_until = NULL
		FROM v WHERE enrollments.id = v.id AND enrollments.rev = v.rev
			AND (v.p_state IS NULL OR enrollments.journey_id = v.p_journey AND enrollments.version = v.p_version
				AND enrollments.entered_at = v.p_entered AND enrollments.held_out = v.p_held_out
				AND enrollments.state = v.p_state)`
}

// decisionsInsertQuery inserts n decisions, in order.
func decisionsInsertQuery(n int) string {
	return `INSERT INTO decisions (at, contact_id, journey_id, version, enrollment_id, step_id,
		channel, outcome, reason, message, details, policy_version)
		VALUES ` + repeatRow(n, rowOrEmpty(decisionInsertColumns, 5, 6, 9))
}

// messagesInsertQuery inserts n messages, in order, skipping any whose
// idempotency key exists (in the table or earlier in the statement).
func messagesInsertQuery(n int) string {
	return `INSERT INTO messages (id, enrollment_id, contact_id, journey_id, version, step_id,
		channel, template, purpose, status, idempotency_key, available_at, details, created_at, updated_at,
		provider_id, attempts, error)
		VALUES ` + repeatRow(n, rowOrEmpty(messageInsertColumns, 5, 7, 8, 15, 17)) + `
		ON CONFLICT (idempotency_key) DO NOTHING`
}

// fromNullMicros is fromMicros of a nullable column; NULL is the zero time.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var enrollmentStates = []string{nudge.EnrollmentWaiting, nudge.EnrollmentCompleted, nudge.EnrollmentConverted, nudge.EnrollmentExited}

// appendEnrollmentArgs checks an enrollment and appends the parameters of
// its row in enrollmentsInsertQuery (Rev 0) or enrollmentsUpdateQuery,
// where prior (nil: not given) is the update's EngineCommit.Prior.
func appendEnrollmentArgs(dst []any, e, prior *nudge.Enrollment, now time.Time) ([]any, error) {
	switch {
	case e == nil:
		return nil, nudge.Errorf(nudge.EINVALID, "enrollment required")
	case e.ID == "":
		return nil, nudge.FieldErrorf("id", "required")
	case e.JourneyID == "":
		return nil, nudge.FieldErrorf("journey_id", "required")
	case e.Version <= 0:
		return nil, nudge.FieldErrorf("version", "%d is not a published version", e.Version)
	case e.ContactID == "":
		return nil, nudge.FieldErrorf("contact_id", "required")
	case !slices.Contains(enrollmentStates, e.State):
		return nil, nudge.FieldErrorf("state", "%q is not one of %s", e.State, strings.Join(enrollmentStates, ", "))
	case e.Rev < 0:
		return nil, nudge.FieldErrorf("rev", "%d is negative", e.Rev)
	case prior != nil && prior.ID != e.ID:
		return nil, nudge.FieldErrorf("prior", "is enrollment %q, not %q", prior.ID, e.ID)
	}
	var event, steps any
	if e.Event != nil {
		enc, err := encodeEvent(e.Event)
		if err != nil {
			return nil, nudge.FieldErrorf("event", "cannot be stored as JSON: %v", err)
		}
		event = enc
	}
	if len(e.Steps) > 0 {
		enc, err := encodeSteps(e.Steps)
		if err != nil {
			return nil, nudge.FieldErrorf("steps", "cannot be stored as JSON: %v", err)
		}
		steps = enc
	}
	entered := e.EnteredAt
	if entered.IsZero() {
		entered = now
	}
	// Key, step id and wait event: NULL when empty (rowOrEmpty).
	if e.Rev == 0 {
		return append(dst, e.ID, e.JourneyID, e.Version, e.ContactID, nullString(e.Key), e.State, nullString(e.StepID),
			nullMicros(e.WakeAt), nullString(e.WaitEvent), e.HeldOut, event, steps, micros(entered), micros(now),
			nullMicros(e.EndedAt)), nil
	}
	dst = append(dst, e.ID, e.State, nullString(e.StepID), nullMicros(e.WakeAt), nullString(e.WaitEvent), e.HeldOut,
		event, steps, micros(entered), micros(now), nullMicros(e.EndedAt), e.Rev)
	if prior == nil {
		return append(dst, nil, nil, nil, nil, nil), nil
	}
	return append(dst, prior.JourneyID, prior.Version, micros(prior.EnteredAt), prior.HeldOut, prior.State), nil
}

// enrollmentRun is a run of consecutive enrollments of a commit that are
// all inserts (Rev 0) or all updates. Each run is written by multi-row
// statements, the runs in commit order, so that an update that ends an
// enrollment still comes before the insert that enters its contact again.
type enrollmentRun struct {
	insert bool
	es     []*nudge.Enrollment
	prior  []*nudge.Enrollment // of an update run: es's EngineCommit.Prior, nil where not given
	args   []any
}

// enrollmentRuns checks and encodes a commit's enrollments, given prior
// as EngineCommit.Prior.
func enrollmentRuns(es, prior []*nudge.Enrollment, now time.Time) ([]enrollmentRun, error) {
	var runs []enrollmentRun
	for i, e := range es {
		insert := e != nil && e.Rev == 0
		if len(runs) == 0 || runs[len(runs)-1].insert != insert {
			// Room for the whole run: a drain's batch is one run of
			// hundreds of updates.
			n, cols := 1, enrollmentUpdateColumns
			if insert {
				cols = enrollmentInsertColumns
			}
			for _, x := range es[i+1:] {
				if (x != nil && x.Rev == 0) != insert {
					break
				}
				n++
			}
			runs = append(runs, enrollmentRun{insert: insert, es: make([]*nudge.Enrollment, 0, n), args: make([]any, 0, n*cols)})
			if !insert {
				runs[len(runs)-1].prior = make([]*nudge.Enrollment, 0, n)
			}
		}
		r := &runs[len(runs)-1]
		var p *nudge.Enrollment
		if !insert && i < len(prior) {
			p = prior[i]
		}
		a, err := appendEnrollmentArgs(r.args, e, p, now)
		if err != nil {
			return nil, nudge.WithField(fmt.Sprintf("enrollments[%d]", i), err)
		}
		r.args = a
		r.es = append(r.es, e)
		if !insert {
			r.prior = append(r.prior, p)
		}
	}
	return runs, nil
}

// writeEnrollments writes a run. An insert returns the ids written: one
// missing is an enrollment that conflicts, named in the ECONFLICT. An
// update counts the rows it changed (a RETURNING clause would collect them
// in a temporary table first); fewer than given is a conflict, which
// EngineCommit names once the transaction is rolled back
// (staleUpdate).
func writeEnrollments(ctx context.Context, tx *sql.Tx, ws *writeStmts, r *enrollmentRun) error {
	if !r.insert {
		changed := 0
		err := execEach(ctx, tx, ws.enrollmentsUpdate, enrollmentUpdateColumns, r.args, func(_ int, res sql.Result) error {
			n, err := res.RowsAffected()
			changed += int(n)
			return err
		})
		if err == nil && changed != len(r.es) {
			err = &staleUpdate{r.es, r.prior}
		}
		return err
	}
	ids := make([]string, 0, len(r.es))
	err := execRows(ctx, tx, ws.enrollmentsInsert, enrollmentInsertColumns, r.args, func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	if isForeignKey(err) {
		return missingReference(ctx, tx, r.es)
	}
	if err != nil || len(ids) == len(r.es) {
		return err
	}
	// An id given twice is written once: the second is the conflict.
	written := make(map[string]int, len(ids))
	for _, id := range ids {
		written[id]++
	}
	e := r.es[0]
	for _, e = range r.es {
		if written[e.ID] == 0 {
			break
		}
		written[e.ID]--
	}
	return nudge.Errorf(nudge.ECONFLICT, "enrollment %q exists, or contact %q already has a live enrollment in journey %q (key %q)",
		e.ID, e.ContactID, e.JourneyID, e.Key)
}

// staleUpdate is a run of enrollment updates that changed fewer rows than
// it has: one of them was not at the revision given.
type staleUpdate struct{ es, prior []*nudge.Enrollment }

func (*staleUpdate) Error() string { return "an enrollment changed concurrently" }

// conflict names the first enrollment of the run that is not at its
// revision in the database as it is (the run's transaction rolled back):
// one that is not stored, or whose stored revision is another, or whose
// row is not as its prior says, or an id given a second time.
func (u *staleUpdate) conflict(ctx context.Context, db *DB) error {
	seen := make(map[string]bool, len(u.es))
	for i, e := range u.es {
		var s nudge.Enrollment
		var entered int64
		err := db.read.QueryRowContext(ctx, `SELECT rev, journey_id, version, entered_at, held_out, state FROM enrollments WHERE id = ?`,
			e.ID).Scan(&s.Rev, &s.JourneyID, &s.Version, &entered, &s.HeldOut, &s.State)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if seen[e.ID] || err != nil || s.Rev != e.Rev {
			return nudge.Errorf(nudge.ECONFLICT, "enrollment %q changed concurrently (revision %d is not the stored one)", e.ID, e.Rev)
		}
		if p := u.prior[i]; p != nil && (p.JourneyID != s.JourneyID || p.Version != s.Version ||
			micros(p.EnteredAt) != entered || p.HeldOut != s.HeldOut || p.State != s.State) {
			return nudge.Errorf(nudge.ECONFLICT, "enrollment %q at revision %d is not stored as its prior says", e.ID, e.Rev)
		}
		seen[e.ID] = true
	}
	// Changed back meanwhile? Revisions only grow; name the first.
	e := u.es[0]
	return nudge.Errorf(nudge.ECONFLICT, "enrollment %q changed concurrently (revision %d is not the stored one)", e.ID, e.Rev)
}

// missingReference names the first enrollment of an insert that failed on
// a foreign key, in the error it returns.
func missingReference(ctx context.Context, tx *sql.Tx, es []*nudge.Enrollment) error {
	for _, e := range es {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM contacts WHERE id = ?1)
			+ (SELECT count(*) FROM journey_versions WHERE journey_id = ?2 AND version = ?3)`,
			e.ContactID, e.JourneyID, e.Version).Scan(&n)
		if err != nil {
			return err
		}
		if n < 2 {
			return nudge.Errorf(nudge.EINVALID, "enrollment %q: contact %q or version %d of journey %q does not exist",
				e.ID, e.ContactID, e.Version, e.JourneyID)
		}
	}
	return nudge.Errorf(nudge.EINVALID, "an enrollment's contact or journey version does not exist")
}

// rowArgs collects the parameters of a commit's decision or message rows.
// Its rows' details are written one after the other into one buffer, which
// becomes one string once every row is in (args), each row's details a
// part of it; and now is boxed once for every row that stores it. A
// transition writes two or three such rows: each would otherwise cost a
// buffer, a string and boxed times of its own, garbage the engine's drain
// collects by the megabyte.
type rowArgs struct {
	args    []any
	now     int64
	nowArg  any
	details []byte
	spans   []detailsSpan
}

// detailsSpan is where a row's details are in rowArgs.details.
type detailsSpan struct{ arg, start, end int }

func newRowArgs(n, cols int, now time.Time) *rowArgs {
	t := micros(now)
	// A send's details take about 250 bytes, most other decisions none.
	return &rowArgs{args: make([]any, 0, n*cols), now: t, nowArg: t, details: make([]byte, 0, n*128)}
}

// time boxes t, re-using the box of now.
func (r *rowArgs) time(t int64) any {
	if t == r.now {
		return r.nowArg
	}
	return t
}

// addDetails encodes m as the next argument (nil for nil).
func (r *rowArgs) addDetails(m map[string]any) error {
	if m == nil {
		r.args = append(r.args, nil)
		return nil
	}
	start := len(r.details)
	b, err := appendJSONMap(r.details, m)
	if err != nil {
		return nudge.FieldErrorf("details", "cannot be stored as JSON: %v", err)
	}
	r.details = b
	r.spans = append(r.spans, detailsSpan{len(r.args), start, len(b)})
	r.args = append(r.args, nil)
	return nil
}

// done returns the arguments, with the details in.
func (r *rowArgs) done() []any {
	all := string(r.details)
	for _, sp := range r.spans {
		r.args[sp.arg] = all[sp.start:sp.end]
	}
	return r.args
}

// addDecision checks a decision and appends its row.
func (r *rowArgs) addDecision(d *nudge.Decision) error {
	switch {
	case d == nil:
		return nudge.Errorf(nudge.EINVALID, "decision required")
	case d.ContactID == "":
		return nudge.FieldErrorf("contact_id", "required")
	case d.Outcome == "":
		return nudge.FieldErrorf("outcome", "required")
	case d.Reason == "":
		return nudge.FieldErrorf("reason", "required")
	}
	at := r.now
	if !d.At.IsZero() {
		at = micros(d.At)
	}
	// Step, channel and message: NULL when empty (rowOrEmpty).
	r.args = append(r.args, r.time(at), d.ContactID, d.JourneyID, d.Version, nullString(d.EnrollmentID),
		nullString(d.StepID), nullString(d.Channel), d.Outcome, d.Reason, nullString(d.Message))
	if err := r.addDetails(d.Details); err != nil {
		return err
	}
	r.args = append(r.args, d.PolicyVersion)
	return nil
}

// addMessage checks a message and appends its row.
func (r *rowArgs) addMessage(m *nudge.Message) error {
	switch {
	case m == nil:
		return nudge.Errorf(nudge.EINVALID, "message required")
	case m.ID == "":
		return nudge.FieldErrorf("id", "required")
	case m.IdempotencyKey == "":
		return nudge.FieldErrorf("idempotency_key", "required")
	case m.ContactID == "":
		return nudge.FieldErrorf("contact_id", "required")
	case m.Channel == "":
		return nudge.FieldErrorf("channel", "required")
	}
	status := m.Status
	if status == "" {
		status = nudge.MessageQueued
	}
	avail := r.now
	if !m.AvailableAt.IsZero() {
		avail = micros(m.AvailableAt)
	}
	// Step, template, purpose, provider id and error: NULL when empty
	// (rowOrEmpty).
	r.args = append(r.args, m.ID, m.EnrollmentID, m.ContactID, m.JourneyID, m.Version, nullString(m.StepID), m.Channel,
		nullString(m.Template), nullString(m.Purpose), status, m.IdempotencyKey, r.time(avail))
	if err := r.addDetails(m.Details); err != nil {
		return err
	}
	r.args = append(r.args, r.nowArg, r.nowArg, nullString(m.ProviderID), m.Attempts, nullString(m.Error))
	return nil
}

// isForeignKey reports whether err is SQLite refusing a foreign key.
func isForeignKey(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY ||
		e.Code()&0xff == sqlite3.SQLITE_CONSTRAINT && strings.Contains(e.Error(), "FOREIGN KEY"))
}

// EngineCommit commits a transition in one transaction; on any error
// nothing of it is applied and the structs are left as they were.
//
// An enrollment with Rev 0 is inserted, with stored revision 1; ECONFLICT
// if its id exists or if it would be a second live (waiting) enrollment for
// its journey, contact and key. Any other is updated only if its stored
// revision is still Rev (ECONFLICT otherwise), which increments it. Its
// journey, version and contact are not changed by an update. Writing an
// enrollment clears its claim, as does naming it in Released.
//
// After a successful commit each committed enrollment's Rev is its new
// stored revision, its UpdatedAt now (and a zero EnteredAt now), so the
// engine can commit it again; each decision's ID is set (in commit order)
// and a zero At is now. Messages are stored with CreatedAt and UpdatedAt
// now, a zero AvailableAt as now and an empty Status as queued; one whose
// idempotency key exists is skipped; each one stored gets the first entry
// of its history (its status at CreatedAt). CancelMessages moves the queued
// messages of those enrollments to cancelled (UpdatedAt now, with a history
// entry); a message sending or beyond is left as it is.
//
// ContactPatches merge as ContactMerge does and, like it, leave each
// contact they change in the inbox: an update_contact step may start an
// attribute trigger. InboxDone items are deleted; an item that is no longer
// there was consumed by another claim (this one's lease expired), so the
// commit fails with ECONFLICT rather than apply the same work twice.
func (db *DB) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	var write func(context.Context) error
	db.prepMu.Lock()
	for i, p := range db.prepared {
		if p.c == c && p.now.Equal(now) {
			write, db.prepared[i] = p.write, preparedCommit{}
		}
	}
	db.prepMu.Unlock()
	if write == nil {
		var err error
		if write, err = db.engineEncode(c, now); err != nil {
			return err
		}
	}
	return write(ctx)
}

// preparedCommit is a commit EnginePrepare checked and encoded, with the
// function that writes it.
type preparedCommit struct {
	c     *nudge.EngineCommit
	now   time.Time
	write func(context.Context) error
}

// EnginePrepare checks and encodes c as EngineCommit(ctx, c, now) would,
// ahead of that call, which then only writes; c must not change in
// between. The engine's drain prepares a batch's commit while the batch
// before it is written, so that the one writer does not wait for the
// encoding too. The store keeps the last two commits prepared; an error
// is the one EngineCommit would return.
func (db *DB) EnginePrepare(c *nudge.EngineCommit, now time.Time) error {
	write, err := db.engineEncode(c, now)
	if err != nil {
		return err
	}
	db.prepMu.Lock()
	db.prepared[0], db.prepared[1] = db.prepared[1], preparedCommit{c, now, write}
	db.prepMu.Unlock()
	return nil
}

// engineEncode checks and encodes c, and returns the function that writes
// it.
func (db *DB) engineEncode(c *nudge.EngineCommit, now time.Time) (func(context.Context) error, error) {
	if c == nil {
		return nil, fmt.Errorf("sqlite: engine commit: %w", nudge.Errorf(nudge.EINVALID, "a commit is required"))
	}
	// Check and encode everything before taking the writer.
	runs, err := enrollmentRuns(c.Enrollments, c.Prior, now)
	if err != nil {
		return nil, fmt.Errorf("sqlite: engine commit: %w", err)
	}
	drows := newRowArgs(len(c.Decisions), decisionInsertColumns, now)
	for i, d := range c.Decisions {
		if err := drows.addDecision(d); err != nil {
			return nil, fmt.Errorf("sqlite: engine commit: %w", nudge.WithField(fmt.Sprintf("decisions[%d]", i), err))
		}
	}
	dargs := drows.done()
	mrows := newRowArgs(len(c.Messages), messageInsertColumns, now)
	for i, m := range c.Messages {
		if err := mrows.addMessage(m); err != nil {
			return nil, fmt.Errorf("sqlite: engine commit: %w", nudge.WithField(fmt.Sprintf("messages[%d]", i), err))
		}
	}
	margs := mrows.done()
	if err := checkPatches(c.ContactPatches); err != nil {
		return nil, fmt.Errorf("sqlite: engine commit: %w", nudge.WithField("contact_patches", err))
	}
	done := slices.Clone(c.InboxDone)
	slices.Sort(done)
	done = slices.Compact(done)

	var released, cancel, inboxDone string
	if len(c.Released) > 0 {
		if released, err = jsonArray(c.Released); err != nil {
			return nil, fmt.Errorf("sqlite: engine commit: %w", err)
		}
	}
	if len(c.CancelMessages) > 0 {
		if cancel, err = jsonArray(c.CancelMessages); err != nil {
			return nil, fmt.Errorf("sqlite: engine commit: %w", err)
		}
	}
	if len(done) > 0 && db.inbox == nil { // a private store's inbox takes done as it is
		if inboxDone, err = jsonArray(done); err != nil {
			return nil, fmt.Errorf("sqlite: engine commit: %w", err)
		}
	}
	// Patches are the caller's: merge copies.
	var patches []*nudge.ContactPatch
	if len(c.ContactPatches) > 0 {
		patches = make([]*nudge.ContactPatch, len(c.ContactPatches))
		for i, p := range c.ContactPatches {
			cp := *p
			patches[i] = &cp
		}
	}

	return func(ctx context.Context) error {
		ws, err := db.writeStmts(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: engine commit: %w", err)
		}
		counts, err := db.reportStmts(ctx)
		if err != nil {
			return fmt.Errorf("sqlite: engine commit: %w", err)
		}
		decisionIDs := make([]int64, 0, len(c.Decisions))
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			counted, err := counts.before(ctx, tx, c)
			if err != nil {
				return err
			}
			for i := range runs {
				if err := writeEnrollments(ctx, tx, ws, &runs[i]); err != nil {
					return err
				}
			}
			if released != "" {
				if _, err := tx.StmtContext(ctx, ws.enrollmentsRelease).ExecContext(ctx, released); err != nil {
					return err
				}
			}
			// A statement inserts its rows in order, and AUTOINCREMENT gives
			// them consecutive ids (the writer inserts nothing else meanwhile):
			// the last one's id says every one's, without a RETURNING clause
			// (which collects the rows in a temporary table first).
			if err := execEach(ctx, tx, ws.decisionsInsert, decisionInsertColumns, dargs, func(rows int, r sql.Result) error {
				last, err := r.LastInsertId()
				if err != nil {
					return err
				}
				if n, err := r.RowsAffected(); err != nil || n != int64(rows) {
					return fmt.Errorf("%d of %d decisions inserted (%v)", n, rows, err)
				}
				for id := last - int64(rows) + 1; id <= last; id++ {
					decisionIDs = append(decisionIDs, id)
				}
				return nil
			}); err != nil {
				return err
			}
			// A message skipped for its idempotency key takes no rowid, and
			// each one inserted takes the next (one more than the table's
			// largest): those of this commit are the rowids from the first
			// statement's first to the last one's last.
			var first, last, inserted int64
			if err := execEach(ctx, tx, ws.messagesInsert, messageInsertColumns, margs, func(rows int, r sql.Result) error {
				n, err := r.RowsAffected()
				if err != nil || n == 0 {
					return err
				}
				inserted += n
				id, err := r.LastInsertId()
				if err != nil {
					return err
				}
				if first == 0 {
					first = id - n + 1
				}
				last = id
				return nil
			}); err != nil {
				return err
			}
			if first > 0 {
				if _, err := tx.StmtContext(ctx, ws.messagesHistory).ExecContext(ctx, first, last); err != nil {
					return err
				}
			}
			if cancel != "" {
				if _, err := tx.StmtContext(ctx, ws.messagesCancelHistory).ExecContext(ctx, micros(now), cancel); err != nil {
					return err
				}
				if _, err := tx.StmtContext(ctx, ws.messagesCancel).ExecContext(ctx, micros(now), cancel); err != nil {
					return err
				}
			}
			if len(patches) > 0 {
				if _, err := mergeContacts(ctx, tx, ws, patches, now); err != nil {
					return err
				}
			}
			if db.inbox != nil {
				if err := db.inbox.consume(done); err != nil {
					return err
				}
			} else if inboxDone != "" {
				r, err := tx.StmtContext(ctx, ws.inboxDelete).ExecContext(ctx, inboxDone)
				if err != nil {
					return err
				}
				if n, err := r.RowsAffected(); err != nil {
					return err
				} else if n != int64(len(done)) {
					return nudge.Errorf(nudge.ECONFLICT, "%d of %d inbox items were consumed by another claim", int64(len(done))-n, len(done))
				}
			}
			// Unless one was skipped, or the commit cancels queued messages
			// (its own among them), the messages are stored as given.
			asGiven := inserted == int64(len(c.Messages)) && cancel == ""
			return counts.after(ctx, tx, c, counted, first, last, asGiven, now)
		})
		var stale *staleUpdate
		if errors.As(err, &stale) {
			err = stale.conflict(ctx, db)
		}
		if err != nil {
			return fmt.Errorf("sqlite: engine commit: %w", err)
		}
		for _, e := range c.Enrollments {
			e.Rev++
			e.UpdatedAt = fromMicros(micros(now))
			if e.EnteredAt.IsZero() {
				e.EnteredAt = e.UpdatedAt
			}
		}
		for i, d := range c.Decisions {
			d.ID = decisionIDs[i]
			if d.At.IsZero() {
				d.At = fromMicros(micros(now))
			}
		}
		return nil
	}, nil
}

const decisionColumns = `id, at, contact_id, journey_id, version, enrollment_id, step_id, channel, outcome,
	reason, message, details, policy_version`

// DecisionList pages the decision log by id, up to p.Limit (default 100, at
// most 10000) after p.AfterID.
func (db *DB) DecisionList(ctx context.Context, p *nudge.DecisionListParams) ([]*nudge.Decision, error) {
	if p == nil {
		p = &nudge.DecisionListParams{}
	}
	w := where{}
	w.eq("contact_id", p.ContactID)
	w.eq("journey_id", p.JourneyID)
	w.eq("enrollment_id", p.EnrollmentID)
	if p.AfterID > 0 {
		w.add("id > ?", p.AfterID)
	}
	st, err := db.readStmt(ctx, `SELECT `+decisionColumns+` FROM decisions`+w.sql()+` ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: decision list: %w", err)
	}
	rows, err := st.QueryContext(ctx, append(w.args, limitOf(p.Limit))...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: decision list: %w", err)
	}
	defer rows.Close()
	ds := []*nudge.Decision{}
	for rows.Next() {
		var (
			d          nudge.Decision
			at         int64
			enrollment sql.NullString
			details    sql.NullString
		)
		if err := rows.Scan(&d.ID, &at, &d.ContactID, &d.JourneyID, &d.Version, &enrollment, &d.StepID, &d.Channel,
			&d.Outcome, &d.Reason, &d.Message, &details, &d.PolicyVersion); err != nil {
			return nil, fmt.Errorf("sqlite: decision list: %w", err)
		}
		d.At = fromMicros(at)
		d.EnrollmentID = enrollment.String
		if details.Valid {
			if err := json.Unmarshal([]byte(details.String), &d.Details); err != nil {
				return nil, fmt.Errorf("sqlite: decision list: decision %d: details: %w", d.ID, err)
			}
		}
		ds = append(ds, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: decision list: %w", err)
	}
	return ds, nil
}

const messageColumns = `id, enrollment_id, contact_id, journey_id, version, step_id, channel, template, purpose,
	status, idempotency_key, available_at, details, created_at, updated_at, provider_id, attempts, error`

func scanMessage(s scanner) (*nudge.Message, error) {
	var (
		m                       nudge.Message
		avail, created, updated int64
		details                 sql.NullString
	)
	if err := s.Scan(&m.ID, &m.EnrollmentID, &m.ContactID, &m.JourneyID, &m.Version, &m.StepID, &m.Channel,
		&m.Template, &m.Purpose, &m.Status, &m.IdempotencyKey, &avail, &details, &created, &updated,
		&m.ProviderID, &m.Attempts, &m.Error); err != nil {
		return nil, err
	}
	m.AvailableAt, m.CreatedAt, m.UpdatedAt = fromMicros(avail), fromMicros(created), fromMicros(updated)
	if details.Valid {
		if err := json.Unmarshal([]byte(details.String), &m.Details); err != nil {
			return nil, fmt.Errorf("message %s: details: %w", m.ID, err)
		}
	}
	return &m, nil
}

// scanMessages reads rows of messageColumns and closes them.
func scanMessages(rows *sql.Rows) ([]*nudge.Message, error) {
	defer rows.Close()
	ms := []*nudge.Message{}
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// dateKey returns the SQL of a date field's value and day key, and the
// name of the index that serves the key ("" for created_at and updated_at,
// which migrations index). An attribute's key is the first ten characters
// of its text, through an expression index made on first use: a query must
// spell the expression exactly as the index does, so the field is a
// literal, and the JSON path quotes it (a label with a dot is one key).
func dateKey(p *nudge.ContactDateParams) (value, key, index string, err error) {
	if !p.Attribute {
		if p.Field != "created_at" && p.Field != "updated_at" {
			return "", "", "", nudge.FieldErrorf("field", "%q is not created_at or updated_at", p.Field)
		}
		return p.Field, p.Field, "", nil
	}
	if p.Field == "" || strings.ContainsAny(p.Field, "\"\\") || strings.IndexFunc(p.Field, func(r rune) bool { return r < 0x20 }) >= 0 {
		return "", "", "", nudge.FieldErrorf("field", "attribute %q cannot be indexed: it is empty or holds a quote, a backslash or a control character", p.Field)
	}
	value = "attributes ->> '" + strings.ReplaceAll(`$."`+p.Field+`"`, "'", "''") + "'"
	sum := sha256.Sum256([]byte(p.Field))
	return value, "substr(" + value + ", 1, 10)", "contacts_date_" + hex.EncodeToString(sum[:8]), nil
}

// ensureDateIndex makes the expression index of an attribute's day key
// unless it exists. Made once, it is maintained by every contact write.
func (db *DB) ensureDateIndex(ctx context.Context, key, index string) error {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?`, index).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := db.write.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+index+` ON contacts (`+key+`, id)`)
	return err
}

// ContactListDates pages the contacts whose date field falls from p.From
// to p.To, by (day key, id), through an index of the key.
func (db *DB) ContactListDates(ctx context.Context, p *nudge.ContactDateParams) (*nudge.ContactDatePage, error) {
	if p == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "sqlite: contact list dates: parameters required")
	}
	value, key, index, err := dateKey(p)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	from, to, err := p.Days()
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	var lo, hi any = p.From, p.To
	if !p.Attribute {
		lo, hi = micros(from), micros(to.AddDate(0, 0, 1))-1
	}
	ak, aid, after, err := p.After()
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	var akey any = ak
	if after && !p.Attribute {
		if akey, err = strconv.ParseInt(ak, 10, 64); err != nil {
			return nil, fmt.Errorf("sqlite: contact list dates: %w", nudge.FieldErrorf("cursor", "not a cursor this list returned"))
		}
	}
	if index != "" {
		if err := db.ensureDateIndex(ctx, key, index); err != nil {
			return nil, fmt.Errorf("sqlite: contact list dates: index %s: %w", p.Field, err)
		}
	}
	// The first page walks the index from the first day, the next ones
	// from the cursor: a range either way, never a scan from the start.
	where := key + ` BETWEEN ?1 AND ?2 AND ?3 IS NULL AND ?4 = ''`
	if after {
		// The plain lower bound lets the planner start the range there.
		where = key + ` >= ?3 AND (` + key + `, id) > (?3, ?4) AND ` + key + ` <= ?2 AND ?1 IS NOT NULL`
	}
	q := `SELECT ` + key + `, id, timezone, ` + value + `, created_at, updated_at FROM contacts
		WHERE ` + where + ` ORDER BY ` + key + `, id LIMIT ?5`
	st, err := db.readStmt(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	n := limit(p.Limit, 1000, 10000)
	if !after {
		akey = nil
	}
	rows, err := st.QueryContext(ctx, lo, hi, akey, aid, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	defer rows.Close()
	page := &nudge.ContactDatePage{Dates: []*nudge.ContactDate{}}
	var lastKey string
	for rows.Next() {
		var (
			d                nudge.ContactDate
			k, v             sql.NullString
			created, updated int64
		)
		if err := rows.Scan(&k, &d.ContactID, &d.Timezone, &v, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
		}
		switch {
		case p.Attribute:
			d.Value = v.String
		case p.Field == "created_at":
			d.Time = fromMicros(created)
		default:
			d.Time = fromMicros(updated)
		}
		lastKey = k.String
		page.Dates = append(page.Dates, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: contact list dates: %w", err)
	}
	if len(page.Dates) == n {
		page.NextCursor = nudge.ContactDateCursor(lastKey, page.Dates[n-1].ContactID)
	}
	return page, nil
}
