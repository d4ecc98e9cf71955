package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nudge/nudge"
)

const enrollmentColumns = `id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event, held_out,
	event, steps, entered_at, updated_at, ended_at, rev`

func scanEnrollment(row pgx.Row) (*nudge.Enrollment, error) {
	var (
		e            nudge.Enrollment
		wake, ended  *time.Time
		event, steps []byte
	)
	if err := row.Scan(&e.ID, &e.JourneyID, &e.Version, &e.ContactID, &e.Key, &e.State, &e.StepID, &wake,
		&e.WaitEvent, &e.HeldOut, &event, &steps, &e.EnteredAt, &e.UpdatedAt, &ended, &e.Rev); err != nil {
		return nil, err
	}
	if wake != nil {
		e.WakeAt = wake.UTC()
	}
	if ended != nil {
		e.EndedAt = ended.UTC()
	}
	e.EnteredAt, e.UpdatedAt = e.EnteredAt.UTC(), e.UpdatedAt.UTC()
	if event != nil {
		if err := json.Unmarshal(event, &e.Event); err != nil {
			return nil, fmt.Errorf("enrollment %s: event: %w", e.ID, err)
		}
	}
	if steps != nil {
		if err := json.Unmarshal(steps, &e.Steps); err != nil {
			return nil, fmt.Errorf("enrollment %s: steps: %w", e.ID, err)
		}
	}
	return &e, nil
}

// InboxPending reports whether InboxClaim at now would find an item: one
// not claimed, or whose claim expired before now (an item another claimer
// has locked counts). The engine asks it between the batches of a drain,
// to serve events first.
//
// It looks as InboxClaim does, in seq order through the key, not with
// EXISTS, which the planner answers with a sequential scan: an inbox that
// a bulk change filled and the engine emptied is all dead rows until
// VACUUM runs (a million contacts' changes leave 460 MB), and the scan
// read all of them between every two batches of a drain (180 ms each at a
// million), where the key's dead entries are marked on the first walk and
// passed over after.
func (db *DB) InboxPending(ctx context.Context, now time.Time) (bool, error) {
	var one int
	err := db.pool.QueryRow(ctx, `SELECT 1 FROM inbox WHERE claimed_until IS NULL OR claimed_until < $1
		ORDER BY seq LIMIT 1`, utc(now)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("inbox pending", err)
	}
	return true, nil
}

func enrollmentNotFound(id string) error {
	return nudge.Errorf(nudge.ENOTFOUND, "enrollment %q not found", id)
}

// enrollmentClaimQuery claims due waiting enrollments of active journeys in
// (wake_at, id) order; see inboxClaimQuery for why SKIP LOCKED and the
// re-check make concurrent claims disjoint.
//
// The active journeys are a small set read first, as an array, rather than
// joined: with a join the planner may read and sort every waiting row
// (millions) when its statistics are stale; with a filter it walks
// enrollments_due_idx in order and stops at the limit.
var enrollmentClaimQuery = `
	WITH c AS MATERIALIZED (
		SELECT e.id FROM enrollments e
		WHERE e.state = 'waiting' AND e.wake_at <= $1
			AND (e.claimed_until IS NULL OR e.claimed_until < $1)
			AND e.journey_id = ANY(ARRAY(SELECT id FROM journeys WHERE status = 'active'))
		ORDER BY e.wake_at, e.id LIMIT $3
		FOR UPDATE OF e SKIP LOCKED
	)
	UPDATE enrollments e SET claimed_until = $2 FROM c WHERE e.id = c.id
	RETURNING ` + enrollmentColumnsOf("e")

// enrollmentColumnsOf qualifies enrollmentColumns with a table alias.
func enrollmentColumnsOf(alias string) string { return columnsOf(alias, enrollmentColumns) }

// EnrollmentClaimDue claims up to limit (default 100, at most 10000)
// waiting enrollments of active journeys whose WakeAt is at or before now
// and whose claim, if any, expired before now, until now+lease. They come
// in WakeAt order, then by id.
func (db *DB) EnrollmentClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.Enrollment, error) {
	limit, err := claimLimit(limit, lease)
	if err != nil {
		return nil, err
	}
	now = utc(now)
	rows, err := db.pool.Query(ctx, enrollmentClaimQuery, now, now.Add(lease), limit)
	if err != nil {
		return nil, wrap("enrollment claim due", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Enrollment, error) { return scanEnrollment(r) })
	if err != nil {
		return nil, wrap("enrollment claim due", err)
	}
	// RETURNING has no order.
	slices.SortFunc(es, func(a, b *nudge.Enrollment) int {
		if c := a.WakeAt.Compare(b.WakeAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if es == nil {
		es = []*nudge.Enrollment{}
	}
	return es, nil
}

// EnrollmentGet returns an enrollment, or ENOTFOUND.
func (db *DB) EnrollmentGet(ctx context.Context, id string) (*nudge.Enrollment, error) {
	e, err := scanEnrollment(db.pool.QueryRow(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("enrollment get: %w", enrollmentNotFound(id))
	}
	if err != nil {
		return nil, wrap("enrollment get", err)
	}
	return e, nil
}

// listQuery builds the WHERE clause of a paged list.
type listQuery struct {
	where []string
	args  []any
}

func (q *listQuery) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *listQuery) eq(col string, v string) {
	if v != "" {
		q.where = append(q.where, col+" = "+q.arg(v))
	}
}

func (q *listQuery) sql(sel, order string, n int) string {
	s := sel
	if len(q.where) > 0 {
		s += ` WHERE ` + strings.Join(q.where, " AND ")
	}
	return s + ` ORDER BY ` + order + ` LIMIT ` + q.arg(n)
}

// EnrollmentList lists enrollments, ordered by ID.
func (db *DB) EnrollmentList(ctx context.Context, p *nudge.EnrollmentListParams) ([]*nudge.Enrollment, error) {
	if p == nil {
		p = &nudge.EnrollmentListParams{}
	}
	var q listQuery
	q.eq("journey_id", p.JourneyID)
	q.eq("contact_id", p.ContactID)
	if p.LiveOnly {
		q.where = append(q.where, "state = 'waiting'")
	}
	if p.AfterID != "" {
		q.where = append(q.where, "id > "+q.arg(p.AfterID))
	}
	rows, err := db.pool.Query(ctx, q.sql(`SELECT `+enrollmentColumns+` FROM enrollments`, "id", engineLimit(p.Limit)), q.args...)
	if err != nil {
		return nil, wrap("enrollment list", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Enrollment, error) { return scanEnrollment(r) })
	if err != nil {
		return nil, wrap("enrollment list", err)
	}
	if es == nil {
		es = []*nudge.Enrollment{}
	}
	return es, nil
}

// enrollmentLiveColumns are enrollmentColumns without the event and the
// steps, which EnrollmentListLive leaves out.
const enrollmentLiveColumns = `id, journey_id, version, contact_id, key, state, step_id, wake_at, wait_event, held_out,
	NULL::jsonb, NULL::jsonb, entered_at, updated_at, ended_at, rev`

// EnrollmentListLive returns, by contact id, the live enrollments of the
// given contacts without their event and steps, each contact's ordered by
// id, in one statement.
func (db *DB) EnrollmentListLive(ctx context.Context, contactIDs []string) (map[string][]*nudge.Enrollment, error) {
	out := make(map[string][]*nudge.Enrollment, len(contactIDs))
	if len(contactIDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+enrollmentLiveColumns+` FROM enrollments
		WHERE contact_id = ANY($1) AND state = 'waiting' ORDER BY contact_id, id`, contactIDs)
	if err != nil {
		return nil, wrap("enrollment list live", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Enrollment, error) { return scanEnrollment(r) })
	if err != nil {
		return nil, wrap("enrollment list live", err)
	}
	for _, e := range es {
		out[e.ContactID] = append(out[e.ContactID], e)
	}
	return out, nil
}

// EnrollmentGetMany returns, by id, the enrollments of ids that exist, in
// one statement.
func (db *DB) EnrollmentGetMany(ctx context.Context, ids []string) (map[string]*nudge.Enrollment, error) {
	out := make(map[string]*nudge.Enrollment, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+enrollmentColumns+` FROM enrollments WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("enrollment get many", err)
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Enrollment, error) { return scanEnrollment(r) })
	if err != nil {
		return nil, wrap("enrollment get many", err)
	}
	for _, e := range es {
		out[e.ID] = e
	}
	return out, nil
}

const decisionColumns = `id, at, contact_id, journey_id, version, enrollment_id, step_id, channel, outcome, reason, message, details, policy_version`

func scanDecision(row pgx.Row) (*nudge.Decision, error) {
	var d nudge.Decision
	if err := row.Scan(&d.ID, &d.At, &d.ContactID, &d.JourneyID, &d.Version, &d.EnrollmentID, &d.StepID, &d.Channel,
		&d.Outcome, &d.Reason, &d.Message, &d.Details, &d.PolicyVersion); err != nil {
		return nil, err
	}
	d.At = d.At.UTC()
	return &d, nil
}

// DecisionList pages the decision log in ID order.
func (db *DB) DecisionList(ctx context.Context, p *nudge.DecisionListParams) ([]*nudge.Decision, error) {
	if p == nil {
		p = &nudge.DecisionListParams{}
	}
	var q listQuery
	q.eq("contact_id", p.ContactID)
	q.eq("journey_id", p.JourneyID)
	q.eq("enrollment_id", p.EnrollmentID)
	if p.AfterID > 0 {
		q.where = append(q.where, "id > "+q.arg(p.AfterID))
	}
	rows, err := db.pool.Query(ctx, q.sql(`SELECT `+decisionColumns+` FROM decisions`, "id", engineLimit(p.Limit)), q.args...)
	if err != nil {
		return nil, wrap("decision list", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*nudge.Decision, error) { return scanDecision(r) })
	if err != nil {
		return nil, wrap("decision list", err)
	}
	if ds == nil {
		ds = []*nudge.Decision{}
	}
	return ds, nil
}

const messageColumns = `id, enrollment_id, contact_id, journey_id, version, step_id, channel, template, purpose, status,
	idempotency_key, available_at, details, created_at, updated_at, provider_id, attempts, error`

// messageRecentColumns are messageColumns without what MessageRecent
// leaves out: the idempotency key, the details, the provider's id, the
// attempts and the error.
const messageRecentColumns = `id, enrollment_id, contact_id, journey_id, version, step_id, channel, template, purpose, status,
	'', available_at, NULL::jsonb, created_at, updated_at, '', 0, ''`

func scanMessage(row pgx.Row) (*nudge.Message, error) {
	var m nudge.Message
	if err := row.Scan(&m.ID, &m.EnrollmentID, &m.ContactID, &m.JourneyID, &m.Version, &m.StepID, &m.Channel,
		&m.Template, &m.Purpose, &m.Status, &m.IdempotencyKey, &m.AvailableAt, &m.Details, &m.CreatedAt, &m.UpdatedAt,
		&m.ProviderID, &m.Attempts, &m.Error); err != nil {
		return nil, err
	}
	m.AvailableAt, m.CreatedAt, m.UpdatedAt = m.AvailableAt.UTC(), m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return &m, nil
}

// dateKey returns the SQL of a date field's value, its day key and the
// key's type, and the name of the index that serves the key ("" for
// created_at and updated_at, which migrations index). An attribute's key is
// the first ten characters of its text, through an expression index made
// on first use: a query must spell the expression exactly as the index
// does, so the field is a literal.
func dateKey(p *nudge.ContactDateParams) (value, key, typ, index string, err error) {
	if !p.Attribute {
		if p.Field != "created_at" && p.Field != "updated_at" {
			return "", "", "", "", nudge.FieldErrorf("field", "%q is not created_at or updated_at", p.Field)
		}
		return "''", "contacts." + p.Field, "timestamptz", "", nil
	}
	if p.Field == "" || strings.ContainsRune(p.Field, 0) {
		return "", "", "", "", nudge.FieldErrorf("field", "attribute %q cannot be indexed", p.Field)
	}
	value = "(attributes ->> '" + strings.ReplaceAll(p.Field, "'", "''") + "')"
	sum := sha256.Sum256([]byte(p.Field))
	return value, `(left(` + value + `, 10) COLLATE "C")`, "text", "contacts_date_" + hex.EncodeToString(sum[:8]), nil
}

// ContactListDates pages the contacts whose date field falls from p.From
// to p.To, by (day key, id), through an index of the key. The index of an
// attribute is made on first use, concurrently (writes to contacts go on
// meanwhile).
func (db *DB) ContactListDates(ctx context.Context, p *nudge.ContactDateParams) (*nudge.ContactDatePage, error) {
	if p == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "contact list dates: parameters required")
	}
	value, key, typ, index, err := dateKey(p)
	if err != nil {
		return nil, fmt.Errorf("contact list dates: %w", err)
	}
	from, to, err := p.Days()
	if err != nil {
		return nil, fmt.Errorf("contact list dates: %w", err)
	}
	var lo, hi any = p.From, p.To
	if !p.Attribute {
		lo, hi = from, to.AddDate(0, 0, 1).Add(-time.Microsecond)
	}
	ak, aid, after, err := p.After()
	if err != nil {
		return nil, fmt.Errorf("contact list dates: %w", err)
	}
	var akey any = ak
	if after && !p.Attribute {
		if akey, err = time.Parse(time.RFC3339Nano, ak); err != nil {
			return nil, fmt.Errorf("contact list dates: %w", nudge.FieldErrorf("cursor", "not a cursor this list returned"))
		}
	}
	if index != "" {
		var exists bool
		if err := db.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, index).Scan(&exists); err != nil {
			return nil, wrap("contact list dates", err)
		}
		if !exists {
			// Another node may be making it too: then this one fails or
			// waits, and the query below runs either way.
			_, _ = db.pool.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+index+` ON contacts (`+key+`, id)`)
		}
	}
	where := key + ` BETWEEN $1::` + typ + ` AND $2::` + typ
	args := []any{lo, hi}
	if after {
		where = `(` + key + `, id) > ($3::` + typ + `, $4) AND ` + key + ` <= $2::` + typ + ` AND $1::` + typ + ` IS NOT NULL`
		args = append(args, akey, aid)
	}
	n := limit(p.Limit, 1000, 10000)
	rows, err := db.pool.Query(ctx, `SELECT `+key+`::text, id, timezone, `+value+`, created_at, updated_at FROM contacts
		WHERE `+where+` ORDER BY `+key+`, id LIMIT `+strconv.Itoa(n), args...)
	if err != nil {
		return nil, wrap("contact list dates", err)
	}
	page := &nudge.ContactDatePage{Dates: []*nudge.ContactDate{}}
	var lastKey string
	for rows.Next() {
		var (
			d                nudge.ContactDate
			k, v             *string
			created, updated time.Time
		)
		if err := rows.Scan(&k, &d.ContactID, &d.Timezone, &v, &created, &updated); err != nil {
			rows.Close()
			return nil, wrap("contact list dates", err)
		}
		switch {
		case p.Attribute:
			if v != nil {
				d.Value = *v
			}
		case p.Field == "created_at":
			d.Time = created.UTC()
		default:
			d.Time = updated.UTC()
		}
		switch {
		case !p.Attribute:
			lastKey = d.Time.Format(time.RFC3339Nano)
		case k != nil:
			lastKey = *k
		}
		page.Dates = append(page.Dates, &d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap("contact list dates", err)
	}
	if len(page.Dates) == n {
		page.NextCursor = nudge.ContactDateCursor(lastKey, page.Dates[n-1].ContactID)
	}
	return page, nil
}
