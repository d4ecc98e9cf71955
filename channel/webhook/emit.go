package webhook

import (
	"context"
	"fmt"
	"time"

	"github.com/nudge/nudge"
)

// What stores record, as subscription events: a store that emits (see
// cmd/nudge) calls these after its writes, so every path that records a
// status, a consent change or an event tells the subscriptions, whether it
// is the delivery worker, a provider callback, an inbound text or a click.

// messageEvents maps a message status to its event type.
var messageEvents = map[string]string{
	nudge.MessageSent:        nudge.WebhookMessageSent,
	nudge.MessageDelivered:   nudge.WebhookMessageDelivered,
	nudge.MessageUndelivered: nudge.WebhookMessageUndelivered,
	nudge.MessageFailed:      nudge.WebhookMessageFailed,
}

// eventTypes maps a recorded event's name to its subscription event type.
var eventTypes = map[string]string{
	"email.bounced":    nudge.WebhookEmailBounced,
	"email.complained": nudge.WebhookEmailComplained,
	"email.opened":     nudge.WebhookEmailOpened,
	"email.clicked":    nudge.WebhookMessageClicked,
	"sms.clicked":      nudge.WebhookMessageClicked,
	"sms.replied":      nudge.WebhookSMSReplied,
}

// MessagesUpdated emits message.sent, .delivered, .undelivered and .failed
// for the updates a store applied (applied[i]); updates it skipped (a
// repeated or late callback) emit nothing, so each message emits each
// status once. get reads the message for the payload. A journey's own
// webhook call is not news to the CRM and emits nothing.
func (d *Dispatcher) MessagesUpdated(ctx context.Context, get func(context.Context, string) (*nudge.Message, error),
	us []*nudge.MessageUpdate, applied []bool, now time.Time) {
	for i, u := range us {
		ev, ok := messageEvents[u.Status]
		if !ok || i >= len(applied) || !applied[i] || !d.Wants(ctx, ev) {
			continue
		}
		m, err := get(ctx, u.MessageID)
		if err != nil {
			d.log.WarnContext(ctx, "webhook: message not read; event not emitted", "message_id", u.MessageID, "event", ev, "error", err)
			continue
		}
		if m.Channel == nudge.ChannelWebhook {
			continue
		}
		d.Emit(ctx, Event{ID: m.ID + ":" + u.Status, Type: ev, At: now, Data: m})
	}
}

// ConsentRecorded emits consent.opted_out and consent.opted_in for the
// ledger entries a store appended (not for duplicates or refusals).
func (d *Dispatcher) ConsentRecorded(ctx context.Context, res []nudge.ConsentRecordResult) {
	for _, r := range res {
		if r.Entry == nil || r.Err != nil || r.Duplicate {
			continue
		}
		var ev string
		switch r.Entry.Status {
		case nudge.ConsentOptedOut:
			ev = nudge.WebhookConsentOptedOut
		case nudge.ConsentOptedIn:
			ev = nudge.WebhookConsentOptedIn
		default:
			continue
		}
		if d.Wants(ctx, ev) {
			d.Emit(ctx, Event{ID: fmt.Sprintf("consent:%d", r.Entry.ID), Type: ev, At: r.Entry.RecordedAt, Data: r.Entry})
		}
	}
}

// EventsIngested emits the subscription events of recorded events: email
// bounces, complaints and opens, clicks, SMS replies. Duplicates (an event
// id seen before: a provider's retried callback) emit nothing.
func (d *Dispatcher) EventsIngested(ctx context.Context, items []nudge.IngestItem, res *nudge.IngestResult) {
	for i, it := range items {
		if it.Event == nil || (res != nil && i < len(res.Duplicate) && res.Duplicate[i]) {
			continue
		}
		ev, ok := eventTypes[it.Event.Name]
		if !ok || !d.Wants(ctx, ev) {
			continue
		}
		d.Emit(ctx, Event{ID: "event:" + it.Event.MessageID, Type: ev, At: it.Event.Timestamp, Data: it.Event})
	}
}
