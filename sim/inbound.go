package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// Inbound SMS in a timeline: a track call named sms.replied whose
// properties.body is an opt-out or opt-in keyword (STOP, START, … as the
// policy's keywords read them) is what the SMS provider's inbound webhook
// makes of such a text in the server: the contact's SMS consent changes
// (source keyword, at the call's time) and the event stored is
// sms.keyword; a text that reads as a revocation is kept as sms.replied
// for review. Any other body stays an sms.replied event.
const (
	eventSMSReplied = "sms.replied"
	eventSMSKeyword = "sms.keyword"
)

// inbound turns the keyword texts among items (the events of one moment)
// into consent changes, and returns the events to ingest and the time of
// the last opt-out it recorded (zero if none).
func inbound(ctx context.Context, s nudge.Store, kw policy.KeywordConfig, items []nudge.IngestItem, now time.Time) ([]nudge.IngestItem, time.Time, error) {
	var optOut time.Time
	out := items[:0:0]
	for _, it := range items {
		ev := it.Event
		body, _ := ev.Properties["body"].(string)
		if ev.Type != nudge.EventTrack || ev.Name != eventSMSReplied || body == "" {
			out = append(out, it)
			continue
		}
		k := policy.ParseKeyword(body, kw)
		if k.Kind != policy.KeywordOptOut && k.Kind != policy.KeywordOptIn {
			if k.Review {
				it = withProperty(it, "review", true)
			}
			if k.Kind != policy.KeywordHelp {
				out = append(out, it)
			}
			continue
		}
		status := nudge.ConsentOptedOut
		if k.Kind == policy.KeywordOptIn {
			status = nudge.ConsentOptedIn
		}
		res, err := s.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{
			ContactID: ev.ContactID, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
			Status: status, Source: nudge.SourceKeyword, Evidence: nudge.ConsentEvidence{Keyword: k.Word},
			OccurredAt: ev.Timestamp, IdempotencyKey: "sim-keyword-" + ev.MessageID,
		}}, now)
		if err != nil {
			return nil, optOut, fmt.Errorf("sim: record %s of %s at %s: %w", k.Word, ev.ContactID, now.Format(time.RFC3339), err)
		}
		if res[0].Err != nil {
			return nil, optOut, fmt.Errorf("sim: record %s of %s at %s: %w", k.Word, ev.ContactID, now.Format(time.RFC3339), res[0].Err)
		}
		if res[0].Duplicate {
			continue // the same call twice (its messageId): handled once
		}
		if status == nudge.ConsentOptedOut {
			optOut = ev.Timestamp
		}
		kev := *ev
		kev.Name = eventSMSKeyword
		kev.Properties = map[string]any{"keyword": k.Word}
		kit := it
		kit.Event = &kev
		out = append(out, kit)
		if k.Review {
			r := withProperty(it, "review", true)
			r.Event.MessageID += "-review"
			out = append(out, r)
		}
	}
	return out, optOut, nil
}

// withProperty returns it with a copy of its event carrying one more property.
func withProperty(it nudge.IngestItem, key string, v any) nudge.IngestItem {
	ev := *it.Event
	ev.Properties = make(map[string]any, len(it.Event.Properties)+1)
	for k, x := range it.Event.Properties {
		ev.Properties[k] = x
	}
	ev.Properties[key] = v
	it.Event = &ev
	return it
}
