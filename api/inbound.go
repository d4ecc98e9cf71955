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
		if in.Dedupe {
			first, err := s.keywordFirstSeen(ctx, contacts, in.Provider+"-keyword-"+in.ID, k.Word, now)
			if err != nil {
				return "", err
			}
			if !first {
				log.InfoContext(ctx, "inbound keyword already handled: a retried webhook")
				return "", nil
			}
		}
		if err := s.recordKeyword(ctx, log, contacts, status, k.Word, now); err != nil {
			return "", err
		}
		if status == nudge.ConsentOptedIn && len(contacts) == 0 {
			// Nothing was recorded: "you are subscribed" would be untrue. An
			// opt-out is acknowledged all the same, as CTIA asks.
			k.Reply = ""
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
