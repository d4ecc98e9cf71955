package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/nudge/nudge"
)

// Timeline entry kinds.
const (
	KindDecision = "decision"
	KindMessage  = "message"
)

// TimelineEntry is one line of a contact's timeline: a decision of the
// decision log or a message of the outbox.
type TimelineEntry struct {
	At           time.Time `json:"at"`
	Kind         string    `json:"kind"` // KindDecision or KindMessage
	ID           string    `json:"id"`   // the decision's id (as text) or the message's
	Journey      string    `json:"journey,omitempty"`
	Version      int64     `json:"version,omitempty"`
	EnrollmentID string    `json:"enrollment_id,omitempty"`
	Step         string    `json:"step,omitempty"`
	Channel      string    `json:"channel,omitempty"`
	Outcome      string    `json:"outcome,omitempty"` // decisions: sent, deferred, skipped, …
	Status       string    `json:"status,omitempty"`  // messages: queued, sent, delivered, …
	Reason       string    `json:"reason,omitempty"`  // the stable reason code (docs/reasons.md)
	Sentence     string    `json:"message"`           // for people
	// MessageID is, for a decision that sent, the message it sent.
	MessageID     string         `json:"message_id,omitempty"`
	Template      string         `json:"template,omitempty"`
	Purpose       string         `json:"purpose,omitempty"`
	PolicyVersion int64          `json:"policy_version,omitempty"`
	UpdatedAt     time.Time      `json:"updated_at,omitzero"` // messages: the last status change
	Details       map[string]any `json:"details,omitempty"`
}

// Timeline is a contact's decisions and messages in time order.
type Timeline struct {
	ContactID string           `json:"contact_id"`
	Entries   []*TimelineEntry `json:"entries"`
	// Truncated: there were more entries than the limit; ask again with
	// since=NextSince for the rest.
	Truncated bool      `json:"truncated,omitempty"`
	NextSince time.Time `json:"next_since,omitzero"`
}

// TimelineParams selects a timeline.
type TimelineParams struct {
	ContactID string
	JourneyID string    // "" for every journey
	Since     time.Time // zero for all time
	Limit     int       // default 1000, at most 10000
}

// TimelineStore is what a timeline reads.
type TimelineStore interface {
	DecisionList(ctx context.Context, p *nudge.DecisionListParams) ([]*nudge.Decision, error)
	MessageList(ctx context.Context, p *nudge.MessageListParams) ([]*nudge.Message, error)
}

// BuildTimeline reads a contact's decisions and messages (of one journey,
// since a time) and merges them in time order; at one instant a decision
// comes before the message it sent. It is what GET
// /v1/contacts/{id}/timeline and `nudge explain` show.
func BuildTimeline(ctx context.Context, st TimelineStore, p *TimelineParams) (*Timeline, error) {
	limit := cmp.Or(p.Limit, 1000)
	if limit < 1 || limit > 10000 {
		return nil, nudge.FieldErrorf("limit", "%d is not a number from 1 to 10000", p.Limit)
	}
	t := &Timeline{ContactID: p.ContactID, Entries: []*TimelineEntry{}}
	dp := &nudge.DecisionListParams{ContactID: p.ContactID, JourneyID: p.JourneyID, Limit: 10000}
	for {
		ds, err := st.DecisionList(ctx, dp)
		if err != nil {
			return nil, fmt.Errorf("timeline: decisions: %w", err)
		}
		for _, d := range ds {
			if d.At.Before(p.Since) {
				continue
			}
			t.Entries = append(t.Entries, DecisionEntry(d))
		}
		if len(ds) < dp.Limit {
			break
		}
		dp.AfterID = ds[len(ds)-1].ID
	}
	mp := &nudge.MessageListParams{ContactID: p.ContactID, Limit: 10000}
	for {
		ms, err := st.MessageList(ctx, mp)
		if err != nil {
			return nil, fmt.Errorf("timeline: messages: %w", err)
		}
		for _, m := range ms {
			if m.CreatedAt.Before(p.Since) || p.JourneyID != "" && m.JourneyID != p.JourneyID {
				continue
			}
			t.Entries = append(t.Entries, MessageEntry(m))
		}
		if len(ms) < mp.Limit {
			break
		}
		mp.AfterID = ms[len(ms)-1].ID
	}
	slices.SortStableFunc(t.Entries, func(a, b *TimelineEntry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		// A decision comes before the message it sent.
		return cmp.Compare(kindOrder(a.Kind), kindOrder(b.Kind))
	})
	if len(t.Entries) > limit {
		t.Truncated, t.NextSince = true, t.Entries[limit].At
		t.Entries = t.Entries[:limit]
	}
	return t, nil
}

func kindOrder(k string) int {
	if k == KindDecision {
		return 0
	}
	return 1
}

// DecisionEntry is a decision as a timeline entry.
func DecisionEntry(d *nudge.Decision) *TimelineEntry {
	e := &TimelineEntry{
		At: d.At, Kind: KindDecision, ID: strconv.FormatInt(d.ID, 10),
		Journey: d.JourneyID, Version: d.Version, EnrollmentID: d.EnrollmentID, Step: d.StepID, Channel: d.Channel,
		Outcome: d.Outcome, Reason: d.Reason, Sentence: d.Message, PolicyVersion: d.PolicyVersion, Details: d.Details,
	}
	e.MessageID, _ = d.Details["message_id"].(string)
	e.Template, _ = d.Details["template"].(string)
	e.Purpose, _ = d.Details["purpose"].(string)
	return e
}

// MessageEntry is a message as a timeline entry, at its creation, with its
// current status and a sentence saying what became of it.
func MessageEntry(m *nudge.Message) *TimelineEntry {
	e := &TimelineEntry{
		At: m.CreatedAt, Kind: KindMessage, ID: m.ID,
		Journey: m.JourneyID, Version: m.Version, EnrollmentID: m.EnrollmentID, Step: m.StepID, Channel: m.Channel,
		Status: m.Status, Template: m.Template, Purpose: m.Purpose, UpdatedAt: m.UpdatedAt, Details: m.Details,
	}
	e.Reason, _ = m.Details["reason"].(string)
	what := channelLabel(m.Channel)
	if m.Template != "" {
		what += " '" + m.Template + "'"
	}
	switch m.Status {
	case nudge.MessageQueued:
		e.Sentence = what + " is queued for delivery"
		if m.AvailableAt.After(m.CreatedAt) {
			e.Sentence += ", not before " + m.AvailableAt.UTC().Format("2006-01-02 15:04 UTC")
		}
	case nudge.MessageCancelled:
		e.Sentence = what + " was cancelled: the enrollment ended before delivery"
	case nudge.MessageSending:
		e.Sentence = what + " is being handed to the provider"
	case nudge.MessageSent:
		e.Sentence = what + " was handed to the provider"
	case nudge.MessageDelivered:
		e.Sentence = what + " was delivered"
	case nudge.MessageFailed:
		e.Sentence = what + " failed"
		if s, _ := m.Details["error"].(string); s != "" {
			e.Sentence += ": " + s
		}
	default:
		e.Sentence = what + " is " + m.Status
	}
	e.Sentence += "."
	return e
}

func channelLabel(ch string) string {
	switch ch {
	case nudge.ChannelSMS:
		return "SMS"
	case nudge.ChannelEmail:
		return "Email"
	case nudge.ChannelWebhook:
		return "Webhook"
	}
	return ch
}

// handleTimeline answers a contact's timeline: ?journey= (one journey),
// ?since= (RFC 3339), ?limit= (1 to 10000, default 1000). An unknown contact
// with no entries is 404; an erased contact's decisions are still shown.
func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkParams(q, "journey", "since", "limit"); err != nil {
		s.fail(w, r, err)
		return
	}
	p := &TimelineParams{ContactID: r.PathValue("id"), JourneyID: q.Get("journey")}
	var err error
	if p.Limit, err = parseLimit(q, 10000); err != nil {
		s.fail(w, r, err)
		return
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			s.fail(w, r, nudge.FieldErrorf("since", "%q is not an RFC 3339 time (2026-03-02T09:00:00Z)", v))
			return
		}
		p.Since = t.UTC()
	}
	t, err := BuildTimeline(r.Context(), s.store, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(t.Entries) == 0 {
		if _, err := s.store.ContactGet(r.Context(), p.ContactID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, t)
}
