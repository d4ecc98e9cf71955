package nudge

import (
	"context"
	"encoding/base64"
	"strings"
	"time"
)

// Enrollment states. An enrollment runs its steps within one transition until
// it waits or ends, so a live enrollment is always waiting.
const (
	EnrollmentWaiting   = "waiting"
	EnrollmentCompleted = "completed" // ran off the end of its steps
	EnrollmentConverted = "converted" // its goal was met
	EnrollmentExited    = "exited"    // an exit rule, an exit step, or an opt-out ended it
)

// Enrollment is one contact's pass through one journey version. A waiting
// enrollment is a durable wait: a row with a wake time (a timer, or a
// wait_for's timeout) and, for wait_for, the event it waits for.
type Enrollment struct {
	ID        string `json:"id"` // made by the engine: unique, sorts in creation order, deterministic in the simulator
	JourneyID string `json:"journey_id"`
	Version   int64  `json:"version"`
	ContactID string `json:"contact_id"`
	Key       string `json:"key,omitempty"` // the journey's enrollment key, "" if none
	State     string `json:"state"`
	StepID    string `json:"step_id,omitempty"` // the step it waits in
	// WakeAt is when the wait ends (zero: no timer; ended enrollments have none).
	WakeAt    time.Time `json:"wake_at,omitzero"`
	WaitEvent string    `json:"wait_event,omitempty"` // the event name a wait_for awaits
	HeldOut   bool      `json:"held_out,omitempty"`   // in the holdout: decisions recorded, nothing sent
	// Event is the event that triggered entry (the `event` of later CEL
	// expressions), nil for attribute and date triggers.
	Event *Event `json:"event,omitempty"`
	// Steps records the steps run so far: step id → when, and the message id
	// of a send (the `journey.steps` of CEL expressions).
	Steps     map[string]StepRecord `json:"steps,omitempty"`
	EnteredAt time.Time             `json:"entered_at"`
	UpdatedAt time.Time             `json:"updated_at"`
	EndedAt   time.Time             `json:"ended_at,omitzero"`
	// Rev is the optimistic-concurrency revision: EngineCommit updates an
	// enrollment only if its stored Rev still equals this one.
	Rev int64 `json:"-"`
}

// StepRecord is what an enrollment remembers of a step it ran.
type StepRecord struct {
	At        time.Time `json:"at"`
	MessageID string    `json:"message_id,omitempty"`
	// Visits counts the times the enrollment reached the step (a deferred
	// send tried again is the same visit): the message of visit N has the
	// idempotency key "ENROLLMENT:STEP:vN".
	Visits int `json:"visits,omitempty"`
}

// Live reports whether the enrollment has not ended.
func (e *Enrollment) Live() bool { return e.State == EnrollmentWaiting }

// InboxItem is work for the engine that ingest and contact changes leave in
// the store, in the same transaction as the change: a stored event (Event set)
// or a contact changed through the API, an import or an update_contact step
// (Event nil).
type InboxItem struct {
	Seq       int64
	ContactID string
	Event     *Event
	At        time.Time
	// Before and After are the contact as the change found and left it,
	// for a contact change and for an identify (whose traits are one):
	// an attribute trigger fires when its condition is false on Before and
	// true on After. Before is nil when the change created the contact.
	// After is nil for a track event, and for an item stored by a version
	// that did not record changes (attribute triggers then skip it).
	Before, After *Contact
}

// EngineCommit is everything one engine transition changes, committed in one
// transaction: the enrollments it creates or advances, its decision records,
// the messages it puts in the outbox, the contact updates it makes, and the
// inbox items it consumed.
type EngineCommit struct {
	// Enrollments to insert (Rev 0 and not stored yet) or update (Rev must
	// equal the stored Rev, else the whole commit fails with ECONFLICT; the
	// stored Rev is then incremented). Committing clears a claim.
	Enrollments []*Enrollment
	// Prior optionally holds the enrollments updated as the caller read
	// them at their Rev: Prior[i] for Enrollments[i] (nil, or past the
	// end: not given). A store may take the stored journey, version,
	// entry time, held-out flag and state from there rather than read
	// them (SQLite's report counters do); it then fails an update whose
	// row holds others with ECONFLICT, as it does a stale Rev.
	Prior     []*Enrollment
	Decisions []*Decision
	// Messages go to the outbox; one whose IdempotencyKey exists is skipped.
	Messages []*Message
	// CancelMessages cancels the queued messages of these enrollment ids:
	// what has not been handed to a provider is not sent.
	CancelMessages []string
	ContactPatches []*ContactPatch
	// InboxDone are inbox items consumed (deleted).
	InboxDone []int64
	// Released are enrollments claimed but not changed: their claim is cleared.
	Released []string
}

// EnrollmentListParams pages enrollments (by ID).
type EnrollmentListParams struct {
	JourneyID string
	ContactID string
	LiveOnly  bool
	AfterID   string
	Limit     int // default 100, at most 10000
}

// ContactDateParams selects, for a date trigger, the contacts whose date
// field falls on a day from From to To ("YYYY-MM-DD", inclusive): an
// attribute (Attribute true) by the first ten characters of its text (a date,
// or the date part of an RFC 3339 timestamp), created_at or updated_at by
// their UTC day. Contacts come ordered by that day, then by id.
type ContactDateParams struct {
	Field     string
	Attribute bool
	From, To  string
	Cursor    string // the NextCursor of the previous page
	Limit     int    // default 1000, at most 10000
}

// Days returns From and To as UTC midnights; EINVALID if either is not a
// day.
func (p *ContactDateParams) Days() (from, to time.Time, err error) {
	if from, err = time.Parse(time.DateOnly, p.From); err != nil {
		return from, to, FieldErrorf("from", "%q is not a day (YYYY-MM-DD)", p.From)
	}
	if to, err = time.Parse(time.DateOnly, p.To); err != nil {
		return from, to, FieldErrorf("to", "%q is not a day (YYYY-MM-DD)", p.To)
	}
	return from, to, nil
}

// After returns the position Cursor names: the day key (as the store wrote
// it) and contact id of the previous page's last contact; ok is false for
// the first page. EINVALID for a cursor no store made.
func (p *ContactDateParams) After() (key, id string, ok bool, err error) {
	if p.Cursor == "" {
		return "", "", false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
	key, id, found := strings.Cut(string(b), "\x00")
	if err != nil || !found {
		return "", "", false, FieldErrorf("cursor", "not a cursor this list returned")
	}
	return key, id, true, nil
}

// ContactDateCursor is the cursor of a page of ContactListDates that ends
// at the day key key and contact id.
func ContactDateCursor(key, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key + "\x00" + id))
}

// ContactDate is a contact's date field, as a date trigger reads it.
type ContactDate struct {
	ContactID string
	Timezone  string
	Value     string    // the attribute's text (Attribute)
	Time      time.Time // created_at or updated_at (not Attribute)
}

// ContactDatePage is one page of ContactListDates.
type ContactDatePage struct {
	Dates      []*ContactDate
	NextCursor string // "" on the last page
}

// EngineStore is what the journey engine needs of the store beyond contacts
// and events: the inbox of work, durable waits, and the atomic commit of a
// transition with its decisions and messages.
type EngineStore interface {
	// InboxClaim claims up to limit unclaimed inbox items (or items whose
	// claim expired), oldest first, for lease. Several processes may claim
	// concurrently; each item goes to one (SKIP LOCKED on PostgreSQL). A
	// claim holds until now+lease inclusive; lease must be positive. Limit
	// defaults to 100, at most 10000 (as for EnrollmentClaimDue).
	InboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*InboxItem, error)
	// EnrollmentClaimDue claims up to limit waiting enrollments whose WakeAt
	// is at or before now, of active journeys, not claimed by someone else
	// (or whose claim expired), in WakeAt order, for lease.
	EnrollmentClaimDue(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*Enrollment, error)
	// EnrollmentList lists enrollments, ordered by ID.
	EnrollmentList(ctx context.Context, p *EnrollmentListParams) ([]*Enrollment, error)
	// EnrollmentListLive returns, by contact id, the live (waiting)
	// enrollments of the given contacts, each contact's ordered by ID, in
	// one query; a contact with none is absent from the map. They come
	// without their Event and Steps (nil): the guardrails, which read
	// them, need neither.
	EnrollmentListLive(ctx context.Context, contactIDs []string) (map[string][]*Enrollment, error)
	// EnrollmentGet returns an enrollment, or ENOTFOUND.
	EnrollmentGet(ctx context.Context, id string) (*Enrollment, error)
	// EnrollmentGetMany returns, by id, those of the enrollments ids that
	// exist, in one query (the delivery re-check of a claimed batch reads
	// them so); a missing one is absent from the map.
	EnrollmentGetMany(ctx context.Context, ids []string) (map[string]*Enrollment, error)
	// EngineCommit commits a transition atomically (see EngineCommit). An
	// enrollment whose Rev changed, an inbox item already consumed by another
	// worker, or a second live enrollment for the same journey, contact and
	// key make it fail with ECONFLICT and change nothing. An enrollment may
	// appear once per commit; an update never changes its journey, version,
	// contact or key. On success only, the store sets each enrollment's Rev,
	// UpdatedAt (and EnteredAt if zero) and each decision's ID (and At if
	// zero) on the caller's structs.
	EngineCommit(ctx context.Context, c *EngineCommit, now time.Time) error
	// ContactListDates pages the contacts whose date field falls in a range
	// of days (see ContactDateParams), through an index of the field, so a
	// date trigger's check reads the contacts of a few days, not all of
	// them. EINVALID for a bad day or cursor.
	ContactListDates(ctx context.Context, p *ContactDateParams) (*ContactDatePage, error)
	// DecisionList pages the decision log.
	DecisionList(ctx context.Context, p *DecisionListParams) ([]*Decision, error)
	// MessageList pages the outbox.
	MessageList(ctx context.Context, p *MessageListParams) ([]*Message, error)
}
