package api

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// inboundSMS is an SMS a person sent, as any provider's webhook reports it.
type inboundSMS struct {
	Provider string // "twilio", "kannel": names its events and their ids
	ID       string // the provider's id of the message
	// Dedupe says ID identifies the message itself, so that a retried
	// webhook can be told from a second message with the same words.
	Dedupe         bool
	From, To, Body string
	// Props are the provider's own properties of the sms.replied event
	// (message_sid, num_media, kannel_id).
	Props map[string]any
}

// handleInboundSMS does what every provider's inbound webhook does, once
// the message is parsed and its keyword read (see policy.ParseKeyword):
// opt-out and opt-in keywords change SMS consent in the ledger, anything
// else becomes an sms.replied event for each contact with the sender's
// number. It returns the reply to send, "" for none.
func (s *Server) handleInboundSMS(ctx context.Context, log *slog.Logger, in *inboundSMS, k policy.Keyword) (string, error) {
	now := s.clock.Now()
	contacts, err := s.contactsByPhone(ctx, in.From)
	if err != nil {
		return "", err
	}
	if k.Review {
		log.WarnContext(ctx, "inbound sms reads as a revocation: flagged for review",
			slog.String("phrase", k.Word), slog.Bool("opted_out", k.Kind == policy.KeywordOptOut),
			slog.Int("contacts", len(contacts)))
	}
	switch k.Kind {
	case policy.KeywordOptOut, policy.KeywordOptIn:
		status := nudge.ConsentOptedOut
		if k.Kind == policy.KeywordOptIn {
			status = nudge.ConsentOptedIn
		}
		first, err := s.recordKeyword(ctx, log, contacts, in, status, k.Word, now)
		if err != nil {
			return "", err
		}
		if !first {
			log.InfoContext(ctx, "inbound keyword already handled: a retried webhook")
			return "", nil
		}
		if k.Review { // a revocation counted as an opt-out: keep the words for a person
			if err := s.ingestReplies(ctx, contacts, in, true, now); err != nil {
				return "", err
			}
		}
	case policy.KeywordHelp:
	case policy.KeywordReview, policy.KeywordReply:
		if len(contacts) == 0 {
			log.InfoContext(ctx, "inbound sms from a number no contact has; dropped")
			break
		}
		if err := s.ingestReplies(ctx, contacts, in, k.Review, now); err != nil {
			return "", err
		}
	}
	return k.Reply, nil
}

// ingestReplies stores an sms.replied event for each contact. The event's
// messageId is derived from the provider's message id, so a webhook
// delivered twice is stored once.
func (s *Server) ingestReplies(ctx context.Context, contacts []*nudge.Contact, in *inboundSMS, review bool, now time.Time) error {
	if len(contacts) == 0 {
		return nil
	}
	items := make([]nudge.IngestItem, len(contacts))
	for i, c := range contacts {
		props := map[string]any{"body": in.Body, "from": in.From, "to": in.To}
		maps.Copy(props, in.Props)
		if review {
			props["review"] = true
		}
		items[i] = nudge.IngestItem{Event: &nudge.Event{
			MessageID: in.Provider + "-" + in.ID + "-" + c.ID, Type: nudge.EventTrack, ContactID: c.ID,
			Name: eventSMSReplied, Properties: props,
			Context:   map[string]any{"channel": nudge.ChannelSMS, "provider": in.Provider},
			Timestamp: now, ReceivedAt: now,
		}}
	}
	if _, err := s.store.EventIngest(ctx, items, now); err != nil {
		return fmt.Errorf("ingest %s: %w", eventSMSReplied, err)
	}
	return nil
}

// contactsByPhone returns every contact whose phone is phone.
func (s *Server) contactsByPhone(ctx context.Context, phone string) ([]*nudge.Contact, error) {
	var out []*nudge.Contact
	p := &nudge.ContactListParams{Phone: phone, Limit: 1000}
	for {
		page, err := s.store.ContactList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("contacts by phone: %w", err)
		}
		out = append(out, page.Contacts...)
		if page.NextCursor == "" || len(page.Contacts) == 0 {
			return out, nil
		}
		p.Cursor = page.NextCursor
	}
}

// recordKeyword records an SMS marketing consent change by keyword: for
// each contact with the sender's number, or, when no contact has it, for
// the number itself, so that the contact who later gets the number is held
// to it. Where the provider's id names the message (in.Dedupe), each change
// carries it as its idempotency key: a retried webhook records nothing, and
// first is false.
func (s *Server) recordKeyword(ctx context.Context, log *slog.Logger, contacts []*nudge.Contact, in *inboundSMS, status, word string, now time.Time) (first bool, err error) {
	key := func(suffix string) string {
		if !in.Dedupe {
			return ""
		}
		return in.Provider + "-keyword-" + in.ID + suffix
	}
	change := func() *nudge.ConsentRecordParams {
		return &nudge.ConsentRecordParams{Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
			Status: status, Source: nudge.SourceKeyword, Evidence: nudge.ConsentEvidence{Keyword: word}, OccurredAt: now}
	}
	var ps []*nudge.ConsentRecordParams
	for _, c := range contacts {
		p := change()
		p.ContactID, p.IdempotencyKey = c.ID, key("-"+c.ID)
		ps = append(ps, p)
	}
	if len(contacts) == 0 {
		p := change()
		p.Address, p.IdempotencyKey = in.From, key("")
		ps = append(ps, p)
	}
	res, err := s.store.ConsentRecord(ctx, ps, now)
	if err != nil {
		return false, fmt.Errorf("consent: %w", err)
	}
	for i, x := range res {
		who := slog.String("contact_id", ps[i].ContactID)
		if ps[i].ContactID == "" {
			who = slog.String("contact_id", "(none: recorded for the number)")
		}
		switch {
		case x.Duplicate:
			continue
		case x.Err != nil:
			log.WarnContext(ctx, "sms keyword not recorded as consent", who, slog.String("status", status), slog.Any("error", x.Err))
		default:
			log.InfoContext(ctx, "sms consent recorded by keyword", who, slog.String("status", status), slog.String("keyword", word))
		}
		first = true
	}
	if first {
		err = s.keywordEvents(ctx, contacts, in.Provider+"-keyword-"+in.ID, word, now)
	}
	return first, err
}

// eventSMSKeyword is the event a consent keyword leaves on each contact of
// the number, so the timeline shows it.
const eventSMSKeyword = "sms.keyword"

// keywordEvents stores an sms.keyword event per contact, keyed by the
// provider's id for the inbound message.
func (s *Server) keywordEvents(ctx context.Context, contacts []*nudge.Contact, id, word string, now time.Time) error {
	if len(contacts) == 0 {
		return nil
	}
	items := make([]nudge.IngestItem, len(contacts))
	for i, c := range contacts {
		items[i] = nudge.IngestItem{Event: &nudge.Event{
			MessageID: id + "-" + c.ID, Type: nudge.EventTrack, ContactID: c.ID, Name: eventSMSKeyword,
			Properties: map[string]any{"keyword": word},
			Context:    map[string]any{"channel": nudge.ChannelSMS},
			Timestamp:  now, ReceivedAt: now,
		}}
	}
	if _, err := s.store.EventIngest(ctx, items, now); err != nil {
		return fmt.Errorf("ingest %s: %w", eventSMSKeyword, err)
	}
	return nil
}
