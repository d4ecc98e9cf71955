package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/internal/reportcount"
)

var _ nudge.DeliveryStore = (*DB)(nil)

// messageClaimQuery claims queued messages in (available_at, id) order;
// see inboxClaimQuery for why SKIP LOCKED and the re-check make concurrent
// claims disjoint. It filters nothing but messages, so the planner walks
// messages_queued_idx in order and stops at the limit. Claimed messages
// stay queued (and in the index) until their worker moves them to sending.
var messageClaimQuery = `
	WITH c AS MATERIALIZED (
		SELECT id FROM messages
		WHERE status = 'queued' AND available_at <= $1 AND (claimed_until IS NULL OR claimed_until < $1)
		ORDER BY available_at, id LIMIT $3
		FOR UPDATE SKIP LOCKED
	)
	UPDATE messages m SET claimed_until = $2 FROM c WHERE m.id = c.id
	RETURNING ` + columnsOf("m", messageColumns)

// columnsOf qualifies a column list with a table alias.
func columnsOf(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// MessageClaim claims up to limit (default 100, at most 10000) queued
// messages whose AvailableAt is at or before now and whose claim, if any,
// expired before now, until now+lease, in (AvailableAt, ID) order.
// Concurrent claims (on any node) take disjoint messages.
func (db *DB) MessageClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.Message, error) {
	limit, err := claimLimit(limit, lease)
	if err != nil {
		return nil, fmt.Errorf("message claim: %w", err)
	}
	now = utc(now)
	rows, err := db.pool.Query(ctx, messageClaimQuery, now, now.Add(lease), limit)
	if err != nil {
		return nil, wrap("message claim", err)
	}
	ms, err := collectMessages(rows)
	if err != nil {
		return nil, wrap("message claim", err)
	}
	// RETURNING has no order.
	slices.SortFunc(ms, func(a, b *nudge.Message) int {
		if c := a.AvailableAt.Compare(b.AvailableAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ms, nil
}

func collectMessages(rows pgx.Rows) ([]*nudge.Message, error) {
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, err
	}
	if ms == nil {
		ms = []*nudge.Message{}
	}
	return ms, nil
}

const (
	// lockMessagesQuery reads and locks messages in id order, the order
	// cancelMessagesQuery locks them in too. With each message comes the
	// report_messages key of its status (journey and day from its
	// enrollment, if any).
	lockMessagesQuery = `SELECT m.id, m.status, m.provider_id, m.attempts, m.error, m.available_at,
			m.enrollment_id, m.step_id, m.channel, e.journey_id, e.version, nudge_report_day(e.entered_at)
		FROM messages m LEFT JOIN enrollments e ON e.id = m.enrollment_id
		WHERE m.id = ANY($1) ORDER BY m.id FOR UPDATE OF m`
	updateMessagesQuery = `
		UPDATE messages m SET status = v.status, provider_id = v.provider_id, attempts = v.attempts,
			error = v.error, available_at = v.available_at,
			claimed_until = CASE WHEN v.clear_claim THEN NULL ELSE m.claimed_until END, updated_at = $8
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::bool[])
			AS v(id, status, provider_id, attempts, error, available_at, clear_claim)
		WHERE m.id = v.id`
	insertStatusesQuery = `
		INSERT INTO message_statuses (message_id, status, detail, at)
		SELECT message_id, status, detail::jsonb, $4
		FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS h(message_id, status, detail, ord)
		ORDER BY ord`
)

// MessageUpdate applies updates in one transaction, in order, appending a
// history entry for each status change. An update whose status does not
// advance, or a requeue of a message that is not sending, is skipped and
// reported false. A requeue moves a sending message back to queued at
// AvailableAt (now if zero) with a history entry whose detail has "retry":
// true. A status past sending clears the message's claim. ENOTFOUND for an
// unknown message: then nothing is applied.
//
// The messages are read and locked in one statement, the updates applied
// in memory, and the rows, history and report counters (each message moved
// once, from its status before the call to its status after it) written in
// one more round trip.
func (db *DB) MessageUpdate(ctx context.Context, us []*nudge.MessageUpdate, now time.Time) ([]bool, error) {
	if err := nudge.CheckMessageUpdates(us); err != nil {
		return nil, fmt.Errorf("message update: %w", err)
	}
	if len(us) == 0 {
		return []bool{}, nil
	}
	now = utc(now)
	ids := nudge.MessageUpdateIDs(us)
	var applied []bool
	err := db.inTx(ctx, "message update", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, lockMessagesQuery, ids)
		if err != nil {
			return err
		}
		cur := make(map[string]*nudge.MessageState, len(ids))
		counted := make(map[string]reportcount.Message, len(ids))
		for rows.Next() {
			var (
				id      string
				m       nudge.MessageState
				n       int32
				c       reportcount.Message
				journey *string
				version *int64
				day     *int64
			)
			if err := rows.Scan(&id, &m.Status, &m.ProviderID, &n, &m.Err, &m.AvailableAt,
				&c.Enrollment, &c.Key.Step, &c.Key.Channel, &journey, &version, &day); err != nil {
				rows.Close()
				return err
			}
			m.Attempts = int(n)
			cur[id] = &m
			if journey != nil {
				c.Key.Journey, c.Key.Version, c.Key.Day, c.Key.Status = *journey, *version, *day, m.Status
				counted[id] = c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if cur[id] == nil {
				return nudge.Errorf(nudge.ENOTFOUND, "message %q not found", id)
			}
		}
		var hist []nudge.MessageHistoryEntry
		applied, hist = nudge.ApplyMessageUpdates(cur, us, now)

		var (
			b                                 pgx.Batch
			mids, statuses, providerIDs, errs []string
			attempts                          []int32
			available                         []time.Time
			clear                             []bool
			hids, hstatuses, hdetails         []string
		)
		for _, id := range ids {
			m := cur[id]
			if !m.Changed {
				continue
			}
			mids, statuses, providerIDs, errs = append(mids, id), append(statuses, m.Status), append(providerIDs, m.ProviderID), append(errs, m.Err)
			attempts, available, clear = append(attempts, int32(m.Attempts)), append(available, m.AvailableAt), append(clear, m.ClearClaim)
		}
		if len(mids) > 0 {
			b.Queue(updateMessagesQuery, mids, statuses, providerIDs, attempts, errs, available, clear, now)
		}
		for _, h := range hist {
			detail, err := jsonText(h.Detail)
			if err != nil {
				return nudge.FieldErrorf("detail", "cannot be stored as JSON: %v", err)
			}
			d := "{}"
			if detail != nil {
				d = *detail
			}
			hids, hstatuses, hdetails = append(hids, h.MessageID), append(hstatuses, h.Status), append(hdetails, d)
		}
		if len(hids) > 0 {
			b.Queue(insertStatusesQuery, hids, hstatuses, hdetails, now)
		}
		var moved reportcount.Moves
		for id, c := range counted {
			if m := cur[id]; m.Changed {
				moved.Move(c, m.Status)
			}
		}
		if err := queueMoves(&b, &moved); err != nil {
			return err
		}
		if b.Len() == 0 {
			return nil
		}
		return runBatch(ctx, tx, &b)
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

func messageNotFound(what string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "message %s not found", what)
}

// MessageGet returns a message, or ENOTFOUND.
func (db *DB) MessageGet(ctx context.Context, id string) (*nudge.Message, error) {
	m, err := scanMessage(db.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("message get: %w", messageNotFound(fmt.Sprintf("%q", id)))
	}
	if err != nil {
		return nil, wrap("message get", err)
	}
	return m, nil
}

// MessageByProviderID returns the message a provider of channel knows by
// pid, or ENOTFOUND. Should a provider reuse an id, the newest message
// with it is the one.
func (db *DB) MessageByProviderID(ctx context.Context, channel, pid string) (*nudge.Message, error) {
	if pid == "" {
		return nil, fmt.Errorf("message by provider id: %w", nudge.FieldErrorf("provider_id", "required"))
	}
	m, err := scanMessage(db.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE channel = $1 AND provider_id = $2 AND provider_id <> '' ORDER BY id DESC LIMIT 1`, channel, pid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("message by provider id: %w", messageNotFound(fmt.Sprintf("with %s provider id %q", channel, pid)))
	}
	if err != nil {
		return nil, wrap("message by provider id", err)
	}
	return m, nil
}

// MessageHistory returns a message's status history, oldest first, or
// ENOTFOUND. Every message has one: EngineCommit writes its first entry.
func (db *DB) MessageHistory(ctx context.Context, id string) ([]*nudge.MessageStatus, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, message_id, status, detail, at FROM message_statuses
		WHERE message_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, wrap("message history", err)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.MessageStatus, error) {
		var s nudge.MessageStatus
		if err := r.Scan(&s.ID, &s.MessageID, &s.Status, &s.Detail, &s.At); err != nil {
			return nil, err
		}
		s.At = s.At.UTC()
		if len(s.Detail) == 0 {
			s.Detail = nil
		}
		return &s, nil
	})
	if err != nil {
		return nil, wrap("message history", err)
	}
	if len(ss) == 0 {
		if _, err := db.MessageGet(ctx, id); err != nil {
			return nil, fmt.Errorf("message history: %w", messageNotFound(fmt.Sprintf("%q", id)))
		}
	}
	return ss, nil
}

// MessageStuck returns up to limit (default 100, at most 10000) messages
// in status sending whose claim expired before now (or that have none), in
// the order their claims expired.
func (db *DB) MessageStuck(ctx context.Context, now time.Time, limit int) ([]*nudge.Message, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE status = 'sending' AND (claimed_until IS NULL OR claimed_until < $1)
		ORDER BY claimed_until NULLS FIRST, id LIMIT $2`, utc(now), engineLimit(limit))
	if err != nil {
		return nil, wrap("message stuck", err)
	}
	ms, err := collectMessages(rows)
	if err != nil {
		return nil, wrap("message stuck", err)
	}
	return ms, nil
}

// MessageSMSSegments sums, by journey, the segments of the journeys' SMS
// marked sending at or after since (the partial index of migration 0009
// finds the sending entries from since).
func (db *DB) MessageSMSSegments(ctx context.Context, journeyIDs []string, since time.Time) (map[string]int, error) {
	out := map[string]int{}
	if len(journeyIDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT m.journey_id, SUM(COALESCE((s.detail->>'segments')::int, 0))::bigint
		FROM message_statuses s JOIN messages m ON m.id = s.message_id
		WHERE s.status = 'sending' AND s.at >= $1 AND m.channel = 'sms' AND m.journey_id = ANY($2)
		GROUP BY m.journey_id`, utc(since), journeyIDs)
	if err != nil {
		return nil, wrap("message sms segments", err)
	}
	defer rows.Close()
	for rows.Next() {
		var j string
		var n int64
		if err := rows.Scan(&j, &n); err != nil {
			return nil, wrap("message sms segments", err)
		}
		out[j] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("message sms segments", err)
	}
	return out, nil
}
