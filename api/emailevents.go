package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// Email providers report what became of a message through webhooks: SendGrid's
// Event Webhook (POST /v1/webhooks/sendgrid, signed with ECDSA) and a generic
// JSON format any provider or relay can be adapted to (POST
// /v1/webhooks/email, with an API key of role ingest). Both become the same
// effects (docs/email-events.md):
//
//	delivered    message delivered
//	bounce hard  message failed; the address suppressed (hard_bounce)
//	bounce soft  message undelivered (SendGrid: a "blocked" bounce)
//	dropped      message failed (SendGrid did not send it)
//	complaint    the address suppressed (complaint); email marketing opted_out
//	unsubscribe  email marketing opted_out
//	open, click  nothing but the event
//
// and each, once the message's contact is known, an email.* track event
// (email.delivered, email.bounced, email.dropped, email.complained,
// email.unsubscribed, email.opened, email.clicked) that journeys can wait
// for. The event's messageId is derived from the provider's event id, so a
// retried webhook is stored once.
//
// The side effects come before the event is stored, and each is idempotent
// (a status only moves forward, a suppression or an opt-out already there is
// left alone): when the database fails half-way the whole request answers
// 5xx, the provider retries it, and what was done already is done again
// harmlessly. A malformed item, or one for a message Nudge does not know, is
// reported in the 200 answer and does not sink the others: SendGrid retries a
// non-2xx answer for up to 72 hours, and a retry would fail the same way.

// Email event kinds, common to both formats.
const (
	emailDelivered   = "delivered"
	emailBounce      = "bounce"
	emailDropped     = "dropped"
	emailComplaint   = "complaint"
	emailUnsubscribe = "unsubscribe"
	emailOpen        = "open"
	emailClick       = "click"
)

// emailEventNames are the track events the kinds become.
var emailEventNames = map[string]string{
	emailDelivered:   "email.delivered",
	emailBounce:      "email.bounced",
	emailDropped:     "email.dropped",
	emailComplaint:   "email.complained",
	emailUnsubscribe: "email.unsubscribed",
	emailOpen:        "email.opened",
	emailClick:       "email.clicked",
}

const (
	// maxEmailEventBytes caps a webhook body. SendGrid posts batches of up
	// to about 1,000 events or 768 KB (it says so in its docs); the generic
	// format gets the same room.
	maxEmailEventBytes = 4 << 20
	// sendgridMaxAge is how old a signed timestamp may be (and how far in
	// the future, for clock skew): a captured request cannot be replayed
	// later than that.
	sendgridMaxAge = 10 * time.Minute
	// SendGrid's signature headers.
	sendgridSignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	sendgridTimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// parseSendGridKey reads the verification key SendGrid shows for a signed
// Event Webhook: base64 of an ECDSA P-256 public key in DER (PKIX), or the
// same in PEM.
func parseSendGridKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var der []byte
	if b, _ := pem.Decode([]byte(s)); b != nil {
		der = b.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("api: Config.SendGridPublicKey is not base64: %v", err)
		}
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("api: Config.SendGridPublicKey is not a public key: %v", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("api: Config.SendGridPublicKey is a %T, not an ECDSA key", k)
	}
	return ek, nil
}

func (s *Server) emailEventRoutes(mux *http.ServeMux, ingestRole func(string, http.HandlerFunc)) {
	mux.HandleFunc("POST /v1/webhooks/sendgrid", s.handleSendGrid) // no API key: signed by SendGrid
	mux.HandleFunc("POST /v1/webhooks/ses", s.handleSES)           // no API key: signed by SNS, topics configured
	ingestRole("POST /v1/webhooks/email", s.handleEmailEvents)
}

// emailEvent is one provider event in Nudge's terms.
type emailEvent struct {
	provider   string // "sendgrid", or "email" for the generic format
	id         string // the provider's event id; what a retry is recognised by
	kind       string // emailDelivered, …; "" for an event that changes nothing
	hard       bool   // a bounce that is permanent
	email      string // the recipient, when the provider says
	messageID  string // Nudge's message id, when the provider carries it
	providerID string // the Message-ID, without angle brackets
	url        string // a click's URL
	at         time.Time
	detail     map[string]any // provider words kept in the history and event
}

// emailItemResult reports one event of a webhook.
type emailItemResult struct {
	Index     int    `json:"index"`
	ID        string `json:"id,omitempty"`
	Outcome   string `json:"outcome"` // applied, duplicate, ignored, unknown_message, error
	MessageID string `json:"message_id,omitempty"`
	Code      string `json:"code,omitempty"`
	Field     string `json:"field,omitempty"`
	Message   string `json:"message,omitempty"`
}

// emailEventsResponse is the answer of both webhooks.
type emailEventsResponse struct {
	Success bool              `json:"success"`
	Applied int               `json:"applied"`
	Errors  int               `json:"errors"`
	Results []emailItemResult `json:"results"`
}

// handleSendGrid serves POST /v1/webhooks/sendgrid: SendGrid's Event
// Webhook, a JSON array of events, signed with ECDSA.
func (s *Server) handleSendGrid(w http.ResponseWriter, r *http.Request) {
	if s.sendgridKey == nil {
		s.fail(w, r, nudge.Errorf(nudge.ENOTFOUND, "SendGrid webhooks are not configured on this server (no SendGrid public key)"))
		return
	}
	body, err := readBody(w, r, maxEmailEventBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.clock.Now()
	if err := verifySendGrid(s.sendgridKey, r.Header.Get(sendgridSignatureHeader), r.Header.Get(sendgridTimestampHeader), body, now); err != nil {
		// Logged: a wrong key or a skewed clock is the operator's to fix.
		s.logger.WarnContext(r.Context(), "sendgrid webhook: rejected", slog.Any("error", err),
			slog.Bool("signature_present", r.Header.Get(sendgridSignatureHeader) != ""))
		s.fail(w, r, err)
		return
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		s.fail(w, r, nudge.Errorf(nudge.EINVALID, "the body is not a JSON array of SendGrid events: %v", err))
		return
	}
	events := make([]*emailEvent, len(raw))
	errs := make([]error, len(raw))
	for i, b := range raw {
		events[i], errs[i] = parseSendGridEvent(b)
	}
	s.applyEmailEvents(w, r, events, errs, now)
}

// verifySendGrid checks SendGrid's signature: base64 of an ASN.1 ECDSA
// signature over SHA-256 of the timestamp header followed by the raw body.
// A timestamp more than sendgridMaxAge away from now is refused too.
func verifySendGrid(key *ecdsa.PublicKey, sig, ts string, body []byte, now time.Time) error {
	forbidden := func(msg string) error { return nudge.Errorf(nudge.EFORBIDDEN, "%s", msg) }
	if sig == "" || ts == "" {
		return forbidden("the " + sendgridSignatureHeader + " and " + sendgridTimestampHeader + " headers are required")
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(ts), 10, 64)
	if err != nil {
		return forbidden("the " + sendgridTimestampHeader + " header is not a Unix time")
	}
	if d := now.Sub(time.Unix(secs, 0)); d > sendgridMaxAge || d < -sendgridMaxAge {
		return forbidden("the " + sendgridTimestampHeader + " header is more than 10 minutes from this server's clock")
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return forbidden("the " + sendgridSignatureHeader + " header is not base64")
	}
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(body)
	if !ecdsa.VerifyASN1(key, h.Sum(nil), der) {
		return forbidden("the " + sendgridSignatureHeader + " header does not sign this request")
	}
	return nil
}

// sendgridEvent is the part of a SendGrid event Nudge reads. Custom args
// (unique_args) arrive as top-level fields: nudge_message_id is one.
type sendgridEvent struct {
	Email          string      `json:"email"`
	Timestamp      json.Number `json:"timestamp"`
	Event          string      `json:"event"`
	SGEventID      string      `json:"sg_event_id"`
	SGMessageID    string      `json:"sg_message_id"`
	SMTPID         string      `json:"smtp-id"`
	Type           string      `json:"type"` // bounce: bounce or blocked
	Reason         string      `json:"reason"`
	Status         string      `json:"status"`
	URL            string      `json:"url"`
	NudgeMessageID string      `json:"nudge_message_id"`
	ASMGroupID     json.Number `json:"asm_group_id"`
}

// sendgridKinds maps SendGrid event words to kinds; processed and deferred
// change nothing ("" kind), other words are unknown.
var sendgridKinds = map[string]string{
	"processed":         "",
	"deferred":          "",
	"delivered":         emailDelivered,
	"bounce":            emailBounce,
	"dropped":           emailDropped,
	"spamreport":        emailComplaint,
	"unsubscribe":       emailUnsubscribe,
	"group_unsubscribe": emailUnsubscribe,
	"open":              emailOpen,
	"click":             emailClick,
}

func parseSendGridEvent(b json.RawMessage) (*emailEvent, error) {
	var e sendgridEvent
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, jsonError(err)
	}
	kind, ok := sendgridKinds[e.Event]
	if !ok {
		return nil, nudge.FieldErrorf("event", "%.40q is not a SendGrid event Nudge knows", e.Event)
	}
	ev := &emailEvent{provider: "sendgrid", kind: kind, email: strings.TrimSpace(e.Email),
		messageID: strings.TrimSpace(e.NudgeMessageID), providerID: bareMessageID(e.SMTPID), url: e.URL,
		detail: map[string]any{"provider_status": e.Event}}
	if e.Timestamp != "" {
		secs, err := e.Timestamp.Int64()
		if err != nil {
			return nil, nudge.FieldErrorf("timestamp", "not a Unix time")
		}
		ev.at = time.Unix(secs, 0).UTC()
	}
	ev.id = e.SGEventID
	if ev.id == "" {
		// No event id: the event's own bytes are the same on every retry.
		sum := sha256.Sum256(b)
		ev.id = "h" + hex.EncodeToString(sum[:12])
	}
	if kind == emailBounce {
		ev.hard = e.Type != "blocked" // "bounce" or missing: permanent
		ev.detail["bounce_type"] = e.Type
	}
	if kind == emailClick && e.URL == "" {
		return nil, nudge.FieldErrorf("url", "a click needs its url")
	}
	for k, v := range map[string]string{"reason": e.Reason, "smtp_status": e.Status, "sg_message_id": e.SGMessageID, "asm_group_id": e.ASMGroupID.String()} {
		if v != "" {
			ev.detail[k] = truncateRunes(v, 200)
		}
	}
	return ev, nil
}

// bareMessageID strips a Message-ID's angle brackets: the SMTP channel's
// provider id is the Message-ID without them.
func bareMessageID(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

// genericEvents is the body of POST /v1/webhooks/email.
type genericEvents struct {
	Events []json.RawMessage `json:"events"`
}

// genericEvent is one event of the generic format.
type genericEvent struct {
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	Type      string `json:"type"`
	Bounce    string `json:"bounce"`
	Email     string `json:"email"`
	URL       string `json:"url"`
	At        string `json:"at"`
	Reason    string `json:"reason"`
}

var genericKinds = map[string]string{
	"delivered": emailDelivered, "bounce": emailBounce, "dropped": emailDropped, "complaint": emailComplaint,
	"unsubscribe": emailUnsubscribe, "open": emailOpen, "click": emailClick,
}

// handleEmailEvents serves POST /v1/webhooks/email: the generic format.
func (s *Server) handleEmailEvents(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, maxEmailEventBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var g genericEvents
	if err := decodeStrict(body, &g); err != nil {
		s.fail(w, r, err)
		return
	}
	if g.Events == nil {
		s.fail(w, r, nudge.FieldErrorf("events", "required: an array of events"))
		return
	}
	events := make([]*emailEvent, len(g.Events))
	errs := make([]error, len(g.Events))
	for i, b := range g.Events {
		events[i], errs[i] = parseGenericEvent(b)
		if err := errs[i]; err != nil {
			// Name the item in the field path, as /v1/batch does.
			b := newErrorBody(err)
			f := fmt.Sprintf("events[%d]", i)
			if b.Field != "" {
				f += "." + b.Field
			}
			errs[i] = &nudge.Error{Code: b.Code, Field: f, Message: b.Message}
		}
	}
	s.applyEmailEvents(w, r, events, errs, s.clock.Now())
}

func parseGenericEvent(b json.RawMessage) (*emailEvent, error) {
	var e genericEvent
	if err := decodeStrict(b, &e); err != nil {
		return nil, err
	}
	kind, ok := genericKinds[e.Type]
	if !ok {
		return nil, nudge.FieldErrorf("type", "%.40q is not one of delivered, bounce, dropped, complaint, unsubscribe, open, click", e.Type)
	}
	if strings.TrimSpace(e.MessageID) == "" && strings.TrimSpace(e.Email) == "" {
		return nil, nudge.FieldErrorf("message_id", "required (or at least email)")
	}
	ev := &emailEvent{provider: "email", kind: kind, email: strings.TrimSpace(e.Email),
		messageID: bareMessageID(e.MessageID), url: e.URL, detail: map[string]any{"provider_status": e.Type}}
	ev.providerID = ev.messageID // Nudge's id, or the Message-ID: both are tried
	switch {
	case kind == emailBounce && (e.Bounce == "hard" || e.Bounce == ""):
		ev.hard = true
		ev.detail["bounce_type"] = "hard"
	case kind == emailBounce && e.Bounce == "soft":
		ev.detail["bounce_type"] = "soft"
	case kind == emailBounce:
		return nil, nudge.FieldErrorf("bounce", "%.20q is not hard or soft", e.Bounce)
	case kind == emailClick && e.URL == "":
		return nil, nudge.FieldErrorf("url", "a click needs its url")
	}
	if e.At != "" {
		t, err := time.Parse(time.RFC3339, e.At)
		if err != nil {
			return nil, nudge.FieldErrorf("at", "not an RFC 3339 time")
		}
		ev.at = t.UTC()
	}
	if e.Reason != "" {
		ev.detail["reason"] = truncateRunes(e.Reason, 200)
	}
	ev.id = e.ID
	if ev.id == "" {
		sum := sha256.Sum256([]byte(e.MessageID + "\x00" + e.Email + "\x00" + e.Type + "\x00" + e.URL + "\x00" + e.At))
		ev.id = "h" + hex.EncodeToString(sum[:12])
	}
	return ev, nil
}

// applyEmailEvents applies the parsed events in order and answers 200 with
// a result per item; errs[i] is item i's parse error. A store failure
// answers 5xx so that the provider retries the whole batch.
func (s *Server) applyEmailEvents(w http.ResponseWriter, r *http.Request, events []*emailEvent, errs []error, now time.Time) {
	resp := emailEventsResponse{Success: true, Results: make([]emailItemResult, len(events))}
	for i, ev := range events {
		res := &resp.Results[i]
		res.Index = i
		if errs[i] != nil {
			b := newErrorBody(errs[i])
			res.Outcome, res.Code, res.Field, res.Message = "error", b.Code, b.Field, b.Message
			resp.Errors++
			continue
		}
		res.ID = ev.id
		outcome, msgID, err := s.applyEmailEvent(r.Context(), ev, now)
		if err != nil {
			if nudge.ErrorCode(err) == nudge.EINVALID {
				b := newErrorBody(err)
				res.Outcome, res.Code, res.Field, res.Message = "error", b.Code, b.Field, b.Message
				resp.Errors++
				continue
			}
			s.fail(w, r, fmt.Errorf("%s event %s: %w", ev.provider, ev.id, err))
			return
		}
		res.Outcome, res.MessageID = outcome, msgID
		if outcome == "applied" {
			resp.Applied++
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// applyEmailEvent applies one event: the message's status, the address's
// suppression, the contact's consent, then the email.* event. It returns
// the outcome and the message's id when known.
func (s *Server) applyEmailEvent(ctx context.Context, ev *emailEvent, now time.Time) (string, string, error) {
	log := s.logger.With(slog.String("provider", ev.provider), slog.String("provider_event_id", ev.id),
		slog.String("kind", ev.kind))
	if ev.kind == "" {
		return "ignored", "", nil
	}
	m, err := s.emailMessage(ctx, ev)
	if err != nil {
		return "", "", err
	}
	msgID := ""
	if m != nil {
		msgID = m.ID
		log = log.With(slog.String("message_id", m.ID))
	}

	// The contacts the event is about: the message's, else every contact
	// with the address. A contact erased since is left out: the event must
	// not bring it back (EventIngest creates the contacts it names).
	var contacts []*nudge.Contact
	if m != nil {
		c, err := s.store.ContactGet(ctx, m.ContactID)
		switch {
		case err == nil:
			contacts = []*nudge.Contact{c}
		case nudge.ErrorCode(err) != nudge.ENOTFOUND:
			return "", "", fmt.Errorf("contact: %w", err)
		}
	} else if ev.email != "" {
		if contacts, err = s.contactsByEmail(ctx, ev.email); err != nil {
			return "", "", err
		}
	}
	addr := ev.email
	if addr == "" && len(contacts) == 1 {
		addr = contacts[0].Email
	}

	// Suppression is keyed by the address, so it applies even when no
	// message or contact is known.
	var reason string
	switch {
	case ev.kind == emailBounce && ev.hard:
		reason = nudge.SuppressHardBounce
	case ev.kind == emailComplaint:
		reason = nudge.SuppressComplaint
	}
	if reason != "" && addr != "" {
		if _, err := nudge.CheckAddress(nudge.ChannelEmail, addr); err != nil {
			return "", msgID, nudge.FieldErrorf("email", "not an email address")
		}
		note := ev.provider + " " + ev.kind + " event " + ev.id
		if msgID != "" {
			note += " on message " + msgID
		}
		if _, err := s.store.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{{
			Channel: nudge.ChannelEmail, Address: addr, Reason: reason, Source: nudge.SourceProvider, Note: note,
		}}, now); err != nil {
			return "", "", fmt.Errorf("suppress: %w", err)
		}
		log.InfoContext(ctx, "email address suppressed", slog.String("reason", reason),
			slog.String("address", nudge.MaskAddress(nudge.ChannelEmail, nudge.NormalizeAddress(nudge.ChannelEmail, addr))))
	}

	if ev.kind == emailComplaint || ev.kind == emailUnsubscribe {
		evidence := "unsubscribe reported by " + ev.provider
		if ev.kind == emailComplaint {
			evidence = "spam complaint"
		}
		if err := s.emailOptOut(ctx, log, contacts, ev.email, evidence, now); err != nil {
			return "", "", err
		}
	}

	if m != nil {
		if status := emailStatus(ev); status != "" {
			if err := s.emailStatusUpdate(ctx, log, m, ev, status, now); err != nil {
				return "", "", err
			}
		}
	}

	if len(contacts) == 0 {
		if m == nil {
			log.InfoContext(ctx, "email event for no known message or contact; only its address effects applied")
			return "unknown_message", "", nil
		}
		return "applied", msgID, nil
	}
	dup, err := s.ingestEmailEvent(ctx, ev, m, contacts, now)
	if err != nil {
		return "", "", err
	}
	if dup {
		return "duplicate", msgID, nil
	}
	return "applied", msgID, nil
}

// emailStatus is the message status an event moves a message to, or "".
func emailStatus(ev *emailEvent) string {
	switch ev.kind {
	case emailDelivered:
		return nudge.MessageDelivered
	case emailBounce:
		if ev.hard {
			return nudge.MessageFailed
		}
		return nudge.MessageUndelivered
	case emailDropped:
		return nudge.MessageFailed
	}
	return ""
}

// emailMessage finds the event's message: by Nudge's id, then by the
// Message-ID the SMTP channel gave it. nil when neither is known.
func (s *Server) emailMessage(ctx context.Context, ev *emailEvent) (*nudge.Message, error) {
	if ev.providerID != "" {
		m, err := s.store.MessageByProviderID(ctx, nudge.ChannelEmail, ev.providerID)
		switch {
		case err == nil:
			return m, nil
		case nudge.ErrorCode(err) != nudge.ENOTFOUND:
			return nil, fmt.Errorf("message by provider id: %w", err)
		}
	}
	if ev.messageID != "" {
		// A Message-ID's local part is the message's id.
		id, _, _ := strings.Cut(ev.messageID, "@")
		m, err := s.store.MessageGet(ctx, id)
		switch {
		case err == nil && m.Channel == nudge.ChannelEmail:
			return m, nil
		case err == nil, nudge.ErrorCode(err) == nudge.ENOTFOUND:
		default:
			return nil, fmt.Errorf("message: %w", err)
		}
	}
	return nil, nil
}

// emailStatusUpdate moves the message on, if the event advances it.
func (s *Server) emailStatusUpdate(ctx context.Context, log *slog.Logger, m *nudge.Message, ev *emailEvent, status string, now time.Time) error {
	u := &nudge.MessageUpdate{MessageID: m.ID, Status: status, Detail: map[string]any{"provider": ev.provider, "provider_event_id": ev.id}}
	for k, v := range ev.detail {
		u.Detail[k] = v
	}
	if status != nudge.MessageDelivered {
		u.Error = ev.provider + " " + ev.kind
		if r, _ := ev.detail["reason"].(string); r != "" {
			u.Error += ": " + r
		}
	}
	applied, err := s.store.MessageUpdate(ctx, []*nudge.MessageUpdate{u}, now)
	if err != nil {
		if nudge.ErrorCode(err) == nudge.ENOTFOUND { // erased meanwhile
			return nil
		}
		return fmt.Errorf("message %s: %w", m.ID, err)
	}
	if len(applied) == 0 || !applied[0] {
		log.InfoContext(ctx, "email event does not advance the message; status left", slog.String("status", m.Status))
	}
	return nil
}

// emailOptOut records email marketing opted_out (source provider) for each
// contact whose current address is the event's, unless it already is.
func (s *Server) emailOptOut(ctx context.Context, log *slog.Logger, contacts []*nudge.Contact, email, evidence string, now time.Time) error {
	for _, c := range contacts {
		// Consent belongs to the address: a contact that changed it since
		// keeps its new address's consent.
		if c.Email == "" || (email != "" && nudge.NormalizeAddress(nudge.ChannelEmail, c.Email) != nudge.NormalizeAddress(nudge.ChannelEmail, email)) {
			log.InfoContext(ctx, "contact's email changed since the message; consent left as it is", slog.String("contact_id", c.ID))
			continue
		}
		states, err := s.store.ConsentList(ctx, c.ID)
		if err != nil {
			if nudge.ErrorCode(err) == nudge.ENOTFOUND {
				continue
			}
			return fmt.Errorf("consent: %w", err)
		}
		done := false
		for _, st := range states {
			if st.Channel == nudge.ChannelEmail && st.Purpose == nudge.PurposeMarketing && st.Status == nudge.ConsentOptedOut {
				done = true // an earlier delivery of this event, or the person before
			}
		}
		if done {
			continue
		}
		res, err := s.store.ConsentRecord(ctx, []*nudge.ConsentRecordParams{{
			ContactID: c.ID, Channel: nudge.ChannelEmail, Purpose: nudge.PurposeMarketing,
			Status: nudge.ConsentOptedOut, Source: nudge.SourceProvider,
			Evidence: nudge.ConsentEvidence{Text: evidence},
		}}, now)
		if err != nil {
			return fmt.Errorf("consent: %w", err)
		}
		if len(res) > 0 && res[0].Err != nil {
			log.WarnContext(ctx, "email opt-out not recorded as consent", slog.String("contact_id", c.ID), slog.Any("error", res[0].Err))
			continue
		}
		log.InfoContext(ctx, "email marketing opted out by provider event", slog.String("contact_id", c.ID))
	}
	return nil
}

// ingestEmailEvent stores the email.* event for each contact and reports
// whether it was a duplicate (a retried webhook).
func (s *Server) ingestEmailEvent(ctx context.Context, ev *emailEvent, m *nudge.Message, contacts []*nudge.Contact, now time.Time) (bool, error) {
	at := ev.at
	if at.IsZero() {
		at = now
	}
	items := make([]nudge.IngestItem, len(contacts))
	for i, c := range contacts {
		props := map[string]any{}
		for k, v := range ev.detail {
			props[k] = v
		}
		props["provider_event_id"] = ev.id
		if m != nil {
			props["message_id"], props["step_id"], props["journey_id"] = m.ID, m.StepID, m.JourneyID
		}
		if ev.url != "" {
			props["url"] = ev.url
		}
		if ev.kind == emailBounce {
			props["hard"] = ev.hard
		}
		id := ev.provider + "-" + ev.id
		if len(contacts) > 1 {
			id += "-" + c.ID
		}
		items[i] = nudge.IngestItem{Event: &nudge.Event{
			MessageID: id, Type: nudge.EventTrack, ContactID: c.ID, Name: emailEventNames[ev.kind],
			Properties: props, Context: map[string]any{"channel": nudge.ChannelEmail, "provider": ev.provider},
			Timestamp: at, ReceivedAt: now,
		}}
	}
	res, err := s.store.EventIngest(ctx, items, now)
	if err != nil {
		return false, fmt.Errorf("ingest %s: %w", emailEventNames[ev.kind], err)
	}
	for _, d := range res.Duplicate {
		if !d {
			return false, nil
		}
	}
	return len(res.Duplicate) > 0, nil
}

// contactsByEmail returns every contact whose email is email.
func (s *Server) contactsByEmail(ctx context.Context, email string) ([]*nudge.Contact, error) {
	var out []*nudge.Contact
	p := &nudge.ContactListParams{Email: nudge.NormalizeAddress(nudge.ChannelEmail, email), Limit: 1000}
	for {
		page, err := s.store.ContactList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("contacts by email: %w", err)
		}
		out = append(out, page.Contacts...)
		if page.NextCursor == "" || len(page.Contacts) == 0 {
			return out, nil
		}
		p.Cursor = page.NextCursor
	}
}
