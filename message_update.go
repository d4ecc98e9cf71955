package nudge

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// MessageState is what a store's MessageUpdate reads and writes of a
// message. Both stores apply updates with ApplyMessageUpdates, so the
// status rules live in one place.
type MessageState struct {
	Status, ProviderID, Err string
	Attempts                int
	AvailableAt             time.Time
	ClearClaim, Changed     bool
}

// MessageHistoryEntry is a history entry MessageUpdate appends.
type MessageHistoryEntry struct {
	MessageID, Status string
	Detail            map[string]any
}

// CheckMessageUpdates validates updates before any is applied.
func CheckMessageUpdates(us []*MessageUpdate) error {
	for i, u := range us {
		field := fmt.Sprintf("updates[%d]", i)
		switch {
		case u == nil:
			return FieldErrorf(field, "update required")
		case u.MessageID == "":
			return FieldErrorf(field+".message_id", "required")
		case u.Requeue && u.Status != "" && u.Status != MessageQueued:
			return FieldErrorf(field+".status", "a requeue moves a message to queued, not %q", u.Status)
		case !u.Requeue && u.Status == MessageQueued:
			return FieldErrorf(field+".status", "a message returns to queued only by a requeue")
		case !u.Requeue && u.Status != "" && !MessageStatusAdvances(MessageQueued, u.Status):
			return FieldErrorf(field+".status", "%q is not a message status", u.Status)
		}
	}
	return nil
}

// ApplyMessageUpdates applies us in order to the messages' states, as
// DeliveryStore.MessageUpdate says, and returns which applied and the
// history entries to append.
func ApplyMessageUpdates(cur map[string]*MessageState, us []*MessageUpdate, now time.Time) ([]bool, []MessageHistoryEntry) {
	applied := make([]bool, len(us))
	var hist []MessageHistoryEntry
	for i, u := range us {
		m := cur[u.MessageID]
		switch {
		case u.Requeue:
			if m.Status != MessageSending {
				continue
			}
			detail := maps.Clone(u.Detail)
			if detail == nil {
				detail = map[string]any{}
			}
			detail["retry"] = true
			m.Status, m.ClearClaim = MessageQueued, true
			m.AvailableAt = u.AvailableAt
			if m.AvailableAt.IsZero() {
				m.AvailableAt = now
			}
			hist = append(hist, MessageHistoryEntry{u.MessageID, MessageQueued, detail})
		case u.Status != "":
			if !MessageStatusAdvances(m.Status, u.Status) {
				continue
			}
			m.Status = u.Status
			// The claim protects a message until its provider call is
			// answered; past sending there is nothing left to protect.
			m.ClearClaim = m.ClearClaim || u.Status != MessageSending
			hist = append(hist, MessageHistoryEntry{u.MessageID, u.Status, u.Detail})
		case !u.AvailableAt.IsZero():
			if m.Status != MessageQueued {
				continue
			}
			m.AvailableAt, m.ClearClaim = u.AvailableAt, true
		}
		if u.ProviderID != "" {
			m.ProviderID = u.ProviderID
		}
		if u.Attempts > 0 {
			m.Attempts = u.Attempts
		}
		if u.Error != "" {
			m.Err = u.Error
		}
		m.Changed, applied[i] = true, true
	}
	return applied, hist
}

// MessageUpdateIDs returns the distinct message ids of us, sorted.
func MessageUpdateIDs(us []*MessageUpdate) []string {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.MessageID
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
