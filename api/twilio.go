package api

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/policy"
)

// Twilio's webhooks carry no API key (Twilio cannot send one): they are
// authenticated by X-Twilio-Signature, an HMAC of the URL Twilio called and
// the form it posted, keyed by the account's auth token.
//
// Answers: 200 once the callback is handled or deliberately ignored (an
// unknown message, a late or repeated status); 403 for a bad signature; 400
// for a form that is not Twilio's; 404 when no auth token is configured; 5xx
// only when the database fails. Twilio logs a non-2xx answer as a webhook
// error and may retry the request (status callbacks on some failures, and any
// webhook with a #rc= retry policy in its URL), so a callback Nudge chose to
// ignore must still get a 200, or it would come back again and again.

// maxTwilioBytes caps a webhook's form: a 1,600-character body, media URLs
// and Twilio's other parameters fit many times over.
const maxTwilioBytes = 64 << 10

// Twilio status words and what they make of a message. Those absent
// (queued, accepted, scheduled, sending, receiving, received,
// partially_delivered) leave it as it is: Nudge marks a message sending
// itself, and sent once Twilio accepted it.
var twilioStatus = map[string]string{
	"sent":        nudge.MessageSent,
	"delivered":   nudge.MessageDelivered,
	"read":        nudge.MessageDelivered, // read implies delivered
	"undelivered": nudge.MessageUndelivered,
	"failed":      nudge.MessageFailed,
	"canceled":    nudge.MessageFailed, // a scheduled message Twilio never sent
}

// twilioOptOut is the error Twilio reports for a number that replied STOP
// (to Twilio's own opt-out handling or the carrier's).
const twilioOptOut = "21610"

// twilioUnreachable are the error codes that say a number cannot receive
// SMS at all, so it is suppressed as unreachable:
//
//	30005 unknown destination handset (the number does not exist)
//	30006 landline or unreachable carrier
//	21614 'To' is not a valid mobile number
//	21211 invalid 'To' phone number
//
// 30003 (handset switched off or out of coverage) and 30008 (unknown error)
// are left out on purpose: they are usually temporary, and suppressing on
// them would silence reachable people for good.
var twilioUnreachable = map[string]bool{"30005": true, "30006": true, "21614": true, "21211": true}

// eventSMSReplied is the track event an inbound SMS that is no keyword
// becomes; journeys can wait for it.
const eventSMSReplied = "sms.replied"

// twilioHooks holds the Twilio webhook configuration.
type twilioHooks struct {
	authToken string
	publicURL string // "" : rebuilt from each request
	keywords  policy.KeywordConfig
	sendSMS   func(ctx context.Context, to, body string) error
}

func newTwilioHooks(cfg Config) (*twilioHooks, error) {
	h := &twilioHooks{
		authToken: cfg.TwilioAuthToken,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		keywords:  cfg.Keywords,
		sendSMS:   cfg.SendSMS,
	}
	if len(h.keywords.Languages) == 0 {
		h.keywords = policy.DefaultKeywords()
	}
	if h.publicURL != "" {
		u, err := url.Parse(h.publicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("api: Config.PublicURL %q is not a base URL like https://nudge.example.com", cfg.PublicURL)
		}
	}
	return h, nil
}

func (s *Server) twilioRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/webhooks/twilio/status", s.twilioWebhook(s.handleTwilioStatus))
	mux.HandleFunc("POST /v1/webhooks/twilio/inbound", s.twilioWebhook(s.handleTwilioInbound))
}

// twilioWebhook reads and authenticates a Twilio webhook, then hands its
// form to h.
func (s *Server) twilioWebhook(h func(w http.ResponseWriter, r *http.Request, form url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.twilio.authToken == "" {
			s.fail(w, r, nudge.Errorf(nudge.ENOTFOUND, "Twilio webhooks are not configured on this server (no Twilio auth token)"))
			return
		}
		body, err := readBody(w, r, maxTwilioBytes)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Only the body's parameters are signed as parameters; the query
		// string is part of the URL.
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.fail(w, r, nudge.Errorf(nudge.EINVALID, "the body is not a form (application/x-www-form-urlencoded): %v", err))
			return
		}
		u := s.twilio.signedURL(r)
		if !twilio.ValidateSignature(s.twilio.authToken, u, form, r.Header.Get("X-Twilio-Signature")) {
			// Logged: the usual cause is a PublicURL that differs from the
			// URL configured at Twilio, which the operator must see.
			s.logger.WarnContext(r.Context(), "twilio webhook: bad signature",
				slog.String("url", u), slog.Bool("signature_present", r.Header.Get("X-Twilio-Signature") != ""))
			s.fail(w, r, nudge.Errorf(nudge.EFORBIDDEN, "the X-Twilio-Signature header is missing or does not sign this request"))
			return
		}
		h(w, r, form)
	}
}

// signedURL is the URL Twilio called, as it signed it: PublicURL and the
// request's path and query, or, without PublicURL, the request's own scheme
// (X-Forwarded-Proto behind a proxy) and Host.
func (h *twilioHooks) signedURL(r *http.Request) string {
	if h.publicURL != "" {
		return h.publicURL + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		scheme = strings.ToLower(strings.TrimSpace(p))
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

// handleTwilioStatus serves POST /v1/webhooks/twilio/status: a delivery
// report moves the message on, if it advances its status; 21610 opts the
// number out and suppresses it; an error saying the number cannot receive
// SMS suppresses it as unreachable.
func (s *Server) handleTwilioStatus(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	cb, err := twilio.ParseStatusCallback(form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.clock.Now()
	log := s.logger.With(slog.String("message_sid", cb.MessageSID), slog.String("twilio_status", cb.Status))
	if cb.ErrorCode != "" {
		log = log.With(slog.String("error_code", cb.ErrorCode))
	}

	m, err := s.store.MessageByProviderID(ctx, nudge.ChannelSMS, cb.MessageSID)
	switch {
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		// Not ours (another system on the account) or not stored yet. A
		// non-2xx answer would only make Twilio try again.
		log.WarnContext(ctx, "twilio status callback for an unknown message")
		m = nil
	case err != nil:
		s.fail(w, r, fmt.Errorf("twilio status: %w", err))
		return
	}

	// The side effects come before the status update, and each is
	// idempotent: if one fails, Twilio's retry finds the status not yet
	// advanced and does them again.
	if err := s.twilioErrorEffects(ctx, log, cb, m, now); err != nil {
		s.fail(w, r, fmt.Errorf("twilio status %s: %w", cb.MessageSID, err))
		return
	}
	if m == nil {
		writeTwiML(w, "")
		return
	}
	status, ok := twilioStatus[cb.Status]
	if !ok {
		log.DebugContext(ctx, "twilio status leaves the message as it is", slog.String("message_id", m.ID))
		writeTwiML(w, "")
		return
	}
	u := &nudge.MessageUpdate{MessageID: m.ID, Status: status,
		Detail: map[string]any{"provider_status": cb.Status}}
	if cb.ErrorCode != "" {
		u.Detail["error_code"] = cb.ErrorCode
		if status == nudge.MessageFailed || status == nudge.MessageUndelivered {
			u.Error = "twilio " + cb.ErrorCode
		}
	}
	applied, err := s.store.MessageUpdate(ctx, []*nudge.MessageUpdate{u}, now)
	if err != nil {
		if nudge.ErrorCode(err) == nudge.ENOTFOUND { // erased meanwhile
			log.WarnContext(ctx, "twilio status callback for a message that is gone", slog.String("message_id", m.ID))
			writeTwiML(w, "")
			return
		}
		s.fail(w, r, fmt.Errorf("twilio status %s: %w", cb.MessageSID, err))
		return
	}
	if len(applied) == 0 || !applied[0] {
		// A repeated or late callback ("sent" after "delivered").
		log.InfoContext(ctx, "twilio status callback does not advance the message; skipped",
			slog.String("message_id", m.ID), slog.String("status", m.Status))
	}
	writeTwiML(w, "")
}

// twilioErrorEffects acts on a callback's error code: 21610 records SMS
// marketing consent opted_out (source provider) for the message's contact and
// suppresses the number (provider_opt_out); an unreachable code suppresses it
// (unreachable). Suppressions are keyed by the address, so they apply even
// when the message is unknown (m nil).
func (s *Server) twilioErrorEffects(ctx context.Context, log *slog.Logger, cb *twilio.StatusCallback, m *nudge.Message, now time.Time) error {
	var reason string
	switch {
	case cb.ErrorCode == twilioOptOut:
		reason = nudge.SuppressProviderOptOut
	case twilioUnreachable[cb.ErrorCode]:
		reason = nudge.SuppressUnreachable
	default:
		return nil
	}
	addr := cb.To
	var contact *nudge.Contact
	if m != nil {
		c, err := s.store.ContactGet(ctx, m.ContactID)
		switch {
		case err == nil:
			contact = c
		case nudge.ErrorCode(err) != nudge.ENOTFOUND:
			return err
		}
	}
	if addr == "" && contact != nil {
		addr = contact.Phone
	}
	if addr != "" {
		if _, err := s.store.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{{
			Channel: nudge.ChannelSMS, Address: addr, Reason: reason, Source: nudge.SourceProvider,
			Note: "twilio error " + cb.ErrorCode + " on message " + cb.MessageSID,
		}}, now); err != nil {
			return fmt.Errorf("suppress: %w", err)
		}
		log.InfoContext(ctx, "sms number suppressed", slog.String("reason", reason),
			slog.String("address", nudge.MaskAddress(nudge.ChannelSMS, addr)))
	}
	if reason != nudge.SuppressProviderOptOut || contact == nil {
		return nil
	}
	// Consent belongs to the number: if the contact has another one now,
	// the suppression of the old number is all there is to record.
	if contact.Phone == "" || (cb.To != "" && contact.Phone != cb.To) {
		log.InfoContext(ctx, "contact's phone changed since the message; consent left as it is",
			slog.String("contact_id", contact.ID))
		return nil
	}
	states, err := s.store.ConsentList(ctx, contact.ID)
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	for _, st := range states {
		if st.Channel == nudge.ChannelSMS && st.Purpose == nudge.PurposeMarketing &&
			st.Status == nudge.ConsentOptedOut && st.Source == nudge.SourceProvider {
			return nil // recorded by an earlier delivery of this callback
		}
	}
	res, err := s.store.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{
		ContactID: contact.ID, Channel: nudge.ChannelSMS, Purpose: nudge.PurposeMarketing,
		Status: nudge.ConsentOptedOut, Source: nudge.SourceProvider,
		Evidence: nudge.ConsentEvidence{Keyword: "carrier opt-out " + twilioOptOut},
	}}, now)
	if err != nil {
		return fmt.Errorf("consent: %w", err)
	}
	if len(res) > 0 && res[0].Err != nil {
		log.WarnContext(ctx, "carrier opt-out not recorded as consent", slog.String("contact_id", contact.ID),
			slog.Any("error", res[0].Err))
	}
	return nil
}

// handleTwilioInbound serves POST /v1/webhooks/twilio/inbound: an SMS a
// person sent. Keywords change consent and are answered (see
// policy.ParseKeyword); any other message becomes an sms.replied event for
// each contact with the sender's number.
func (s *Server) handleTwilioInbound(w http.ResponseWriter, r *http.Request, form url.Values) {
	ctx := r.Context()
	in, err := twilio.ParseInbound(form)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	log := s.logger.With(slog.String("message_sid", in.MessageSID),
		slog.String("from", nudge.MaskAddress(nudge.ChannelSMS, in.From)))
	props := map[string]any{"message_sid": in.MessageSID}
	if in.NumMedia > 0 {
		props["num_media"] = in.NumMedia
	}
	reply, err := s.handleInboundSMS(ctx, log, &inboundSMS{Provider: "twilio", ID: in.MessageSID, Dedupe: true,
		From: in.From, To: in.To, Body: in.Body, Props: props}, s.twilio.keyword(in))
	if err != nil {
		s.fail(w, r, fmt.Errorf("twilio inbound %s: %w", in.MessageSID, err))
		return
	}
	s.answerSMS(w, r, log, in.From, reply)
}

// keyword reads an inbound message. When Twilio matched a keyword itself
// (OptOutType, with Advanced Opt-Out on), its verdict stands, and Twilio
// sends its own confirmation or help text: Nudge answers nothing, so that the
// person gets one reply, not two.
func (h *twilioHooks) keyword(in *twilio.Inbound) policy.Keyword {
	k := policy.ParseKeyword(in.Body, h.keywords)
	kind := map[string]string{"STOP": policy.KeywordOptOut, "START": policy.KeywordOptIn, "HELP": policy.KeywordHelp}[in.OptOutType]
	if kind == "" {
		return k
	}
	if k.Kind != kind {
		k = policy.Keyword{Kind: kind, Word: strings.ToUpper(strings.TrimSpace(in.Body))}
		if len(k.Word) > 40 || k.Word == "" {
			k.Word = in.OptOutType
		}
	}
	k.Reply, k.Review = "", false
	return k
}

// answerSMS answers an inbound webhook with reply: through SendSMS when
// configured, else as TwiML for Twilio to send. A reply that cannot be sent
// is logged; the webhook still succeeds, since its consent change is stored
// and a retry would record it twice.
func (s *Server) answerSMS(w http.ResponseWriter, r *http.Request, log *slog.Logger, to, reply string) {
	if reply == "" || s.twilio.sendSMS == nil {
		writeTwiML(w, reply)
		return
	}
	if err := s.twilio.sendSMS(r.Context(), to, reply); err != nil {
		log.ErrorContext(r.Context(), "sms reply not sent", slog.Any("error", err))
	}
	writeTwiML(w, "")
}

// writeTwiML answers 200 with a TwiML response: one message, or nothing.
func writeTwiML(w http.ResponseWriter, message string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	if message == "" {
		b.WriteString("<Response/>")
	} else {
		b.WriteString("<Response><Message>")
		_ = xml.EscapeText(&b, []byte(message)) // a strings.Builder does not fail
		b.WriteString("</Message></Response>")
	}
	_, _ = w.Write([]byte(b.String()))
}
