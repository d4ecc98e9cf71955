package nudge

import (
	"context"
	"time"
)

// Event types, as in Segment's spec.
const (
	EventIdentify = "identify"
	EventTrack    = "track"
)

// Event is something a contact did or that happened to them. Identify calls
// are kept as events too, so a contact's timeline shows when traits changed.
type Event struct {
	Seq         int64          `json:"seq"` // store-assigned, increasing
	MessageID   string         `json:"message_id"`
	Type        string         `json:"type"` // identify | track
	ContactID   string         `json:"contact_id"`
	AnonymousID string         `json:"anonymous_id,omitempty"`
	Name        string         `json:"name,omitempty"`       // track only
	Properties  map[string]any `json:"properties,omitempty"` // track properties or identify traits
	Context     map[string]any `json:"context,omitempty"`
	Timestamp   time.Time      `json:"timestamp"`   // when it happened, skew-corrected
	ReceivedAt  time.Time      `json:"received_at"` // when Nudge received it
}

// IngestItem is one accepted identify or track call. Patch is set for an
// identify (its traits); it is applied only if the event is not a duplicate.
type IngestItem struct {
	Event *Event
	Patch *ContactPatch
}

// IngestResult tells, per item and in order, whether it was stored or was a
// duplicate of an earlier messageId.
type IngestResult struct {
	Duplicate []bool
}

// EventListParams pages a contact's events, newest first.
type EventListParams struct {
	ContactID string
	Name      string // optional: only track events of this name
	Cursor    string
	Limit     int // default 50, at most 1000
}

// EventPage is one page of events.
type EventPage struct {
	Events     []*Event `json:"events"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

// EventStore keeps events.
type EventStore interface {
	// EventIngest stores items in one transaction. Contacts named by track
	// events are created if they do not exist; identify patches are merged.
	// An item whose MessageID was already stored (within the event retention,
	// at least 24 hours) is a duplicate: nothing of it is applied. Each stored
	// event is also left in the engine's inbox, in the same transaction, so a
	// crash between ingest and the engine loses nothing.
	EventIngest(ctx context.Context, items []IngestItem, now time.Time) (*IngestResult, error)
	// EventList returns a page of a contact's events, newest first.
	EventList(ctx context.Context, p *EventListParams) (*EventPage, error)
	// EventPrune deletes events received before before; it returns how many.
	EventPrune(ctx context.Context, before time.Time) (int64, error)
}
