package nudge

import (
	"context"
	"time"
)

// Message statuses. The engine creates messages queued; delivery moves them on.
const (
	MessageQueued      = "queued"
	MessageCancelled   = "cancelled" // its enrollment converted or exited before delivery
	MessageSending     = "sending"
	MessageSent        = "sent"
	MessageDelivered   = "delivered"
	MessageUndelivered = "undelivered"
	MessageFailed      = "failed"
	// MessageOutcomeUnknown: the process died after the provider call began
	// and before its answer was stored. SMS is at-most-once by default: such
	// a message is recorded and shown, never sent again.
	MessageOutcomeUnknown = "outcome_unknown"
)

// messageRank orders statuses so a message's history only moves forward,
// whatever order provider callbacks arrive in.
var messageRank = map[string]int{
	MessageQueued: 0, MessageSending: 1, MessageSent: 2,
	MessageDelivered: 3, MessageUndelivered: 3, MessageFailed: 3,
	MessageCancelled: 3, MessageOutcomeUnknown: 3,
}

// MessageStatusAdvances reports whether a message may move from status
// from to status to: forward only, and never out of a final status.
func MessageStatusAdvances(from, to string) bool {
	f, okf := messageRank[from]
	t, okt := messageRank[to]
	return okf && okt && t > f
}

// Message channels beyond ChannelEmail and ChannelSMS: a webhook step's call
// is delivered from the outbox too.
const ChannelWebhook = "webhook"

// Message is one outbound email, SMS or webhook call in the outbox. The
// engine writes it in the same transaction as the decision that sent it.
type Message struct {
	ID             string         `json:"id"` // made by the engine; sorts in creation order
	EnrollmentID   string         `json:"enrollment_id"`
	ContactID      string         `json:"contact_id"`
	JourneyID      string         `json:"journey_id"`
	Version        int64          `json:"version"`
	StepID         string         `json:"step_id"`
	Channel        string         `json:"channel"`
	Template       string         `json:"template,omitempty"`
	Purpose        string         `json:"purpose,omitempty"`
	Status         string         `json:"status"`
	IdempotencyKey string         `json:"idempotency_key"` // unique: enrollment and step
	AvailableAt    time.Time      `json:"available_at"`    // not delivered before
	Details        map[string]any `json:"details,omitempty"`
	ProviderID     string         `json:"provider_id,omitempty"` // the provider's id once accepted
	Attempts       int            `json:"attempts,omitempty"`    // provider calls made
	Error          string         `json:"error,omitempty"`       // the last failure: provider code and text
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

// MessageStatus is one entry of a message's status history.
type MessageStatus struct {
	ID        int64          `json:"id"`
	MessageID string         `json:"message_id"`
	Status    string         `json:"status"`
	Detail    map[string]any `json:"detail,omitempty"`
	At        time.Time      `json:"at"`
}

// MessageUpdate moves a message on. Status must advance
// (MessageStatusAdvances), or be "" (no status change). Requeue is the one
// way back: a sending message returns to queued for a retry at AvailableAt
// (its history records it). An update without a status and with
// AvailableAt defers a queued message: it is released from its claim and
// not claimed again before AvailableAt (a rate limit's slot, a parked
// webhook); a message past queued is not deferred (reported false).
// Fields left zero are left as they are.
type MessageUpdate struct {
	MessageID   string
	Status      string
	Requeue     bool
	ProviderID  string
	Attempts    int // the new total, when > 0
	Error       string
	AvailableAt time.Time // a retry: not before
	Detail      map[string]any
}

// DeliveryStore is what delivery workers need of the store: claiming queued
// messages, and recording every step of their delivery.
type DeliveryStore interface {
	// MessageClaim claims up to limit queued messages whose AvailableAt is
	// at or before now and that are not claimed (or whose claim expired), in
	// AvailableAt order, for lease (SKIP LOCKED on PostgreSQL).
	MessageClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*Message, error)
	// MessageUpdate applies updates in one transaction, appending a history
	// entry for each status change. An update whose status does not advance
	// (a repeated or late provider callback) is skipped and reported false,
	// not an error. ENOTFOUND for an unknown message.
	MessageUpdate(ctx context.Context, us []*MessageUpdate, now time.Time) ([]bool, error)
	// MessageGet returns a message, or ENOTFOUND.
	MessageGet(ctx context.Context, id string) (*Message, error)
	// MessageByProviderID returns the message a provider knows by pid, or ENOTFOUND.
	MessageByProviderID(ctx context.Context, channel, pid string) (*Message, error)
	// MessageHistory returns a message's status history, oldest first.
	MessageHistory(ctx context.Context, id string) ([]*MessageStatus, error)
	// MessageStuck returns messages in status sending whose claim expired
	// before now: a process died mid-send. The worker marks them
	// outcome_unknown (SMS) or requeues them (email, if configured).
	MessageStuck(ctx context.Context, now time.Time, limit int) ([]*Message, error)
	// MessageSMSSegments sums, by journey id, the SMS segments the given
	// journeys' texts were marked sending with (the "segments" of their
	// sending history entries) at or after since: what a journey's SMS
	// budget counts. A journey without any is left out.
	MessageSMSSegments(ctx context.Context, journeyIDs []string, since time.Time) (map[string]int, error)
}

// MessageListParams pages the outbox. By default in ID order (engine IDs
// sort in creation order), from after AfterID; with Newest, newest first
// by (CreatedAt, ID), from before BeforeID, the cursor the console's
// messages log pages with. Filters combine with AND; "" and zero times
// leave a filter out. Each filter on its own is served by an index on both
// stores; a step is served within its journey (give JourneyID with
// StepID).
type MessageListParams struct {
	ContactID    string
	EnrollmentID string
	Status       string
	Channel      string
	JourneyID    string
	StepID       string
	From         time.Time // created at or after From
	To           time.Time // created before To
	Newest       bool      // newest first, by (CreatedAt, ID)
	AfterID      string    // ID order: the page after this message
	BeforeID     string    // Newest: the page after (older than) this message
	Limit        int       // default 100, at most 10000
}

// Check returns an EINVALID error naming the field of a cursor that does
// not go with the order asked for, or of a time range that ends before it
// starts.
func (p *MessageListParams) Check() error {
	switch {
	case p.Newest && p.AfterID != "":
		return FieldErrorf("after_id", "pages in ID order; newest first pages with before_id")
	case !p.Newest && p.BeforeID != "":
		return FieldErrorf("before_id", "pages newest first; set newest, or page in ID order with after_id")
	case !p.From.IsZero() && !p.To.IsZero() && !p.To.After(p.From):
		return FieldErrorf("to", "%s is not after from (%s)", p.To.UTC().Format(time.RFC3339), p.From.UTC().Format(time.RFC3339))
	}
	return nil
}
