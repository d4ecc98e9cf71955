package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

var _ nudge.DeliveryStore = (*DB)(nil)

// Statements of delivery, prepared once on the writer.
const (
	// messagesClaimQuery walks messages_queued in (available_at, id)
	// order; claimed messages stay queued (and in the index) until their
	// worker moves them to sending. Left to itself the planner prefers
	// messages_status_created and sorts every queued message.
	messagesClaimQuery = `UPDATE messages SET claimed_until = ?1
		WHERE id IN (
			SELECT id FROM messages INDEXED BY messages_queued
			WHERE status = 'queued' AND available_at <= ?2 AND (claimed_until IS NULL OR claimed_until < ?2)
			ORDER BY available_at, id LIMIT ?3)
		RETURNING ` + messageColumns
	// messagesReadQuery reads, with a message's state, the report_messages
	// key of its status (journey and day from its enrollment, if any).
	messagesReadQuery = `SELECT m.id, m.status, m.provider_id, m.attempts, m.error, m.available_at,
			m.enrollment_id, m.step_id, m.channel, e.journey_id, e.version, e.entered_at
		FROM messages m LEFT JOIN enrollments e ON e.id = m.enrollment_id
		WHERE m.id IN (SELECT value FROM json_each(?))`
)

// messagesUpdateQuery updates n messages, each a row of
// messageUpdateColumns values: id, status, provider id, attempts, error,
// available_at, whether to clear the claim, updated_at.
func messagesUpdateQuery(n int) string {
	return `UPDATE messages SET status = v.column2, provider_id = v.column3, attempts = v.column4, error = v.column5,
		available_at = v.column6, claimed_until = CASE WHEN v.column7 THEN NULL ELSE claimed_until END, updated_at = v.column8
		FROM (VALUES ` + valuesRows(n, messageUpdateColumns) + `) AS v WHERE messages.id = v.column1`
}

const messageUpdateColumns = 8

// statusesInsertQuery appends n history entries, each a row of
// statusInsertColumns values: message id, status, detail, at.
func statusesInsertQuery(n int) string {
	return `INSERT INTO message_statuses (message_id, status, detail, at) VALUES ` + valuesRows(n, statusInsertColumns)
}

const statusInsertColumns = 4

// MessageClaim claims up to limit (default 100, at most 10000) queued
// messages whose AvailableAt is at or before now and whose claim, if any,
// expired before now, until now+lease, in (AvailableAt, ID) order. The
// writer connection serializes claims: no message goes to two claims.
func (db *DB) MessageClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.Message, error) {
	if err := checkLease(lease); err != nil {
		return nil, fmt.Errorf("sqlite: message claim: %w", err)
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message claim: %w", err)
	}
	var ms []*nudge.Message
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.StmtContext(ctx, ws.messagesClaim).QueryContext(ctx, micros(now.Add(lease)), micros(now), limitOf(limit))
		if err != nil {
			return err
		}
		ms, err = scanMessages(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: message claim: %w", err)
	}
	// RETURNING does not keep the order of the subquery.
	slices.SortFunc(ms, func(a, b *nudge.Message) int {
		if c := a.AvailableAt.Compare(b.AvailableAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ms, nil
}

// MessageUpdate applies updates in one transaction, in order, appending a
// history entry for each status change. An update whose status does not
// advance, or a requeue of a message that is not sending, is skipped and
// reported false. A requeue moves a sending message back to queued at
// AvailableAt (now if zero) with a history entry whose detail has "retry":
// true. A status past sending clears the message's claim. ENOTFOUND for an
// unknown message: then nothing is applied. The report counters of the
// messages' statuses move once per call, from each message's status before
// it to its status after it.
func (db *DB) MessageUpdate(ctx context.Context, us []*nudge.MessageUpdate, now time.Time) ([]bool, error) {
	if err := nudge.CheckMessageUpdates(us); err != nil {
		return nil, fmt.Errorf("sqlite: message update: %w", err)
	}
	if len(us) == 0 {
		return []bool{}, nil
	}
	ids := nudge.MessageUpdateIDs(us)
	arr, err := jsonArray(ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message update: %w", err)
	}
	ws, err := db.writeStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message update: %w", err)
	}
	rs, err := db.statusStmts(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message update: %w", err)
	}
	var applied []bool
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		cur := make(map[string]*nudge.MessageState, len(ids))
		counted := make(map[string]reportcount.Message, len(ids))
		if err := queryTx(ctx, tx, ws.messagesRead, []any{arr}, func(rows *sql.Rows) error {
			var (
				id      string
				m       nudge.MessageState
				avail   int64
				c       reportcount.Message
				journey sql.NullString
				version sql.NullInt64
				entered sql.NullInt64
			)
			if err := rows.Scan(&id, &m.Status, &m.ProviderID, &m.Attempts, &m.Err, &avail,
				&c.Enrollment, &c.Key.Step, &c.Key.Channel, &journey, &version, &entered); err != nil {
				return err
			}
			m.AvailableAt = fromMicros(avail)
			cur[id] = &m
			if journey.Valid {
				c.Key.Journey, c.Key.Version, c.Key.Day, c.Key.Status = journey.String, version.Int64, reportcount.DayOf(entered.Int64), m.Status
				counted[id] = c
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			if cur[id] == nil {
				return nudge.Errorf(nudge.ENOTFOUND, "message %q not found", id)
			}
		}
		var hist []nudge.MessageHistoryEntry
		applied, hist = nudge.ApplyMessageUpdates(cur, us, now)
		args := make([]any, 0, len(ids)*messageUpdateColumns)
		for _, id := range ids {
			m := cur[id]
			if m.Changed {
				args = append(args, id, m.Status, m.ProviderID, m.Attempts, m.Err, micros(m.AvailableAt), m.ClearClaim, micros(now))
			}
		}
		if err := execRows(ctx, tx, ws.messagesUpdate, messageUpdateColumns, args, nil); err != nil {
			return err
		}
		args = make([]any, 0, len(hist)*statusInsertColumns)
		for _, h := range hist {
			detail, err := jsonOrNull(h.Detail)
			if err != nil {
				return nudge.FieldErrorf("detail", "cannot be stored as JSON: %v", err)
			}
			if detail == nil {
				detail = "{}"
			}
			args = append(args, h.MessageID, h.Status, detail, micros(now))
		}
		if err := execRows(ctx, tx, ws.statusesInsert, statusInsertColumns, args, nil); err != nil {
			return err
		}
		var moved reportcount.Moves
		for id, c := range counted {
			if m := cur[id]; m.Changed {
				moved.Move(c, m.Status)
			}
		}
		return rs.write(ctx, tx, &moved)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: message update: %w", err)
	}
	return applied, nil
}

func messageNotFound(what string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "message %s not found", what)
}

// MessageGet returns a message, or ENOTFOUND.
func (db *DB) MessageGet(ctx context.Context, id string) (*nudge.Message, error) {
	st, err := db.readStmt(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message get: %w", err)
	}
	m, err := scanMessage(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = messageNotFound(fmt.Sprintf("%q", id))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: message get: %w", err)
	}
	return m, nil
}

// MessageByProviderID returns the message a provider of channel knows by
// pid, or ENOTFOUND. Should a provider reuse an id, the newest message
// with it is the one.
func (db *DB) MessageByProviderID(ctx context.Context, channel, pid string) (*nudge.Message, error) {
	if pid == "" {
		return nil, fmt.Errorf("sqlite: message by provider id: %w", nudge.FieldErrorf("provider_id", "required"))
	}
	st, err := db.readStmt(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE channel = ? AND provider_id = ? AND provider_id <> '' ORDER BY id DESC LIMIT 1`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message by provider id: %w", err)
	}
	m, err := scanMessage(st.QueryRowContext(ctx, channel, pid))
	if errors.Is(err, sql.ErrNoRows) {
		err = messageNotFound(fmt.Sprintf("with %s provider id %q", channel, pid))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: message by provider id: %w", err)
	}
	return m, nil
}

// MessageHistory returns a message's status history, oldest first, or
// ENOTFOUND. Every message has one: EngineCommit writes its first entry.
func (db *DB) MessageHistory(ctx context.Context, id string) ([]*nudge.MessageStatus, error) {
	st, err := db.readStmt(ctx, `SELECT id, message_id, status, detail, at FROM message_statuses
		WHERE message_id = ? ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message history: %w", err)
	}
	rows, err := st.QueryContext(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message history: %w", err)
	}
	defer rows.Close()
	ss := []*nudge.MessageStatus{}
	for rows.Next() {
		var (
			s      nudge.MessageStatus
			detail string
			at     int64
		)
		if err := rows.Scan(&s.ID, &s.MessageID, &s.Status, &detail, &at); err != nil {
			return nil, fmt.Errorf("sqlite: message history: %w", err)
		}
		s.At = fromMicros(at)
		if err := unmarshalDetail(detail, &s.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: message history: entry %d: detail: %w", s.ID, err)
		}
		ss = append(ss, &s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: message history: %w", err)
	}
	if len(ss) == 0 {
		if _, err := db.MessageGet(ctx, id); err != nil {
			return nil, fmt.Errorf("sqlite: message history: %w", messageNotFound(fmt.Sprintf("%q", id)))
		}
	}
	return ss, nil
}

// unmarshalDetail decodes a history entry's detail; {} is none.
func unmarshalDetail(s string, d *map[string]any) error {
	if s == "" || s == "{}" {
		return nil
	}
	return json.Unmarshal([]byte(s), d)
}

// MessageStuck returns up to limit (default 100, at most 10000) messages
// in status sending whose claim expired before now (or that have none), in
// the order their claims expired.
func (db *DB) MessageStuck(ctx context.Context, now time.Time, limit int) ([]*nudge.Message, error) {
	st, err := db.readStmt(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE status = 'sending' AND (claimed_until IS NULL OR claimed_until < ?)
		ORDER BY claimed_until, id LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message stuck: %w", err)
	}
	rows, err := st.QueryContext(ctx, micros(now), limitOf(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: message stuck: %w", err)
	}
	ms, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message stuck: %w", err)
	}
	return ms, nil
}

// MessageSMSSegmentsQuery walks the sending entries of the history from
// since (the partial index of migration 0009), not every entry.
const MessageSMSSegmentsQuery = `SELECT m.journey_id, SUM(COALESCE(CAST(json_extract(s.detail, '$.segments') AS INTEGER), 0))
	FROM message_statuses s INDEXED BY message_statuses_sending
	JOIN messages m ON m.id = s.message_id
	WHERE s.status = 'sending' AND s.at >= ?1 AND m.channel = 'sms'
		AND m.journey_id IN (SELECT value FROM json_each(?2))
	GROUP BY m.journey_id`

// MessageSMSSegments sums, by journey, the segments of the journeys' SMS
// marked sending at or after since.
func (db *DB) MessageSMSSegments(ctx context.Context, journeyIDs []string, since time.Time) (map[string]int, error) {
	out := map[string]int{}
	if len(journeyIDs) == 0 {
		return out, nil
	}
	ids, err := jsonArray(journeyIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message sms segments: %w", err)
	}
	st, err := db.readStmt(ctx, MessageSMSSegmentsQuery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message sms segments: %w", err)
	}
	rows, err := st.QueryContext(ctx, micros(since), ids)
	if err != nil {
		return nil, fmt.Errorf("sqlite: message sms segments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j string
		var n int
		if err := rows.Scan(&j, &n); err != nil {
			return nil, fmt.Errorf("sqlite: message sms segments: %w", err)
		}
		out[j] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: message sms segments: %w", err)
	}
	return out, nil
}
