package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// Kannel's webhooks (the dlr-url of each message and an sms-service's
// get-url) are plain GETs with the values in the query, and Kannel can
// neither sign them nor send a header. They are authenticated by a shared
// secret, Config.KannelKey, in the query (key=…), compared in constant time.
// A secret in a URL is the weaker kind (OWASP ASVS 14.2.1): it lands in
// Kannel's and any proxy's access logs. So the key is meant for a loopback or
// private link between smsbox and Nudge only, never for a URL that crosses
// the Internet, and it is no API key: it opens these two endpoints and
// nothing else. Nudge logs paths, never query strings.
//
// Answers: 200 once handled or deliberately ignored (an unknown message, a
// report that does not advance it); 403 for a missing or wrong key; 400 for a
// request that is not Kannel's; 404 when no key is configured; 5xx only when
// the database fails (smsbox logs it; it does not retry).

// minKannelKey is the shortest key New accepts: 22 characters of base64 or
// 32 hex digits carry 128 bits.
const minKannelKey = 22

func (s *Server) kannelRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/webhooks/kannel/dlr", s.kannelWebhook(s.handleKannelDLR))
	mux.HandleFunc("GET /v1/webhooks/kannel/inbound", s.kannelWebhook(s.handleKannelInbound))
}

// checkKannelKey validates Config.KannelKey at construction.
func checkKannelKey(key string) error {
	if key != "" && len(key) < minKannelKey {
		return fmt.Errorf("api: Config.KannelKey is %d characters; use at least %d random ones (128 bits)", len(key), minKannelKey)
	}
	return nil
}

// kannelWebhook authenticates a Kannel request by its key, then hands its
// query to h.
func (s *Server) kannelWebhook(h func(w http.ResponseWriter, r *http.Request, q url.Values)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.kannelKey == "" {
			s.fail(w, r, nudge.Errorf(nudge.ENOTFOUND, "Kannel webhooks are not configured on this server (no Kannel key)"))
			return
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.fail(w, r, nudge.Errorf(nudge.EINVALID, "the query is not well formed: %v", err))
			return
		}
		// Hashing first makes the compare constant-time in the length too.
		got, want := sha256.Sum256([]byte(q.Get("key"))), sha256.Sum256([]byte(s.kannelKey))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.logger.WarnContext(r.Context(), "kannel webhook: bad key",
				slog.String("path", r.URL.Path), slog.Bool("key_present", q.Has("key")))
			s.fail(w, r, nudge.Errorf(nudge.EFORBIDDEN, "the key parameter is missing or wrong"))
			return
		}
		h(w, r, q)
	}
}

// KannelDLRStatus maps a Kannel delivery report type (%d) to a message
// status, "" for a report that changes nothing (4, buffered at the SMSC).
// A type is a bit of the dlr-mask; should one carry several bits, the final
// ones win: delivered, then not delivered, then SMSC failure, then SMSC
// success.
func kannelDLRStatus(typ int) string {
	switch {
	case typ&1 != 0:
		return nudge.MessageDelivered
	case typ&2 != 0:
		return nudge.MessageUndelivered
	case typ&16 != 0:
		return nudge.MessageFailed
	case typ&8 != 0:
		return nudge.MessageSent
	}
	return ""
}

// handleKannelDLR serves GET /v1/webhooks/kannel/dlr?message_id=ID&type=%d:
// a delivery report moves the message on, if it advances its status.
func (s *Server) handleKannelDLR(w http.ResponseWriter, r *http.Request, q url.Values) {
	ctx := r.Context()
	id := strings.TrimSpace(q.Get("message_id"))
	if id == "" {
		s.fail(w, r, nudge.FieldErrorf("message_id", "is required"))
		return
	}
	typ, err := strconv.Atoi(strings.TrimSpace(q.Get("type")))
	if err != nil || typ < 0 {
		s.fail(w, r, nudge.FieldErrorf("type", "%.20q is not a Kannel report type (%%d)", q.Get("type")))
		return
	}
	log := s.logger.With(slog.String("message_id", id), slog.Int("dlr_type", typ))
	status := kannelDLRStatus(typ)
	if status == "" {
		log.DebugContext(ctx, "kannel report leaves the message as it is")
		writeKannel(w, "")
		return
	}
	m, err := s.store.MessageGet(ctx, id)
	switch {
	case nudge.ErrorCode(err) == nudge.ENOTFOUND:
		log.WarnContext(ctx, "kannel report for an unknown message")
		writeKannel(w, "")
		return
	case err != nil:
		s.fail(w, r, fmt.Errorf("kannel dlr %s: %w", id, err))
		return
	case m.Channel != nudge.ChannelSMS:
		log.WarnContext(ctx, "kannel report for a message that is no SMS", slog.String("channel", m.Channel))
		writeKannel(w, "")
		return
	}
	u := &nudge.MessageUpdate{MessageID: id, Status: status,
		Detail: map[string]any{"provider_status": "kannel dlr " + strconv.Itoa(typ)}}
	if reply := q.Get("reply"); reply != "" { // %A: the SMSC's own words
		u.Detail["smsc_reply"] = truncateRunes(reply, 200)
	}
	if status == nudge.MessageFailed || status == nudge.MessageUndelivered {
		u.Error = "kannel dlr " + strconv.Itoa(typ)
	}
	applied, err := s.store.MessageUpdate(ctx, []*nudge.MessageUpdate{u}, s.clock.Now())
	if err != nil {
		if nudge.ErrorCode(err) == nudge.ENOTFOUND { // erased meanwhile
			log.WarnContext(ctx, "kannel report for a message that is gone")
			writeKannel(w, "")
			return
		}
		s.fail(w, r, fmt.Errorf("kannel dlr %s: %w", id, err))
		return
	}
	if len(applied) == 0 || !applied[0] {
		log.InfoContext(ctx, "kannel report does not advance the message; skipped", slog.String("status", m.Status))
	}
	writeKannel(w, "")
}

// handleKannelInbound serves GET /v1/webhooks/kannel/inbound?from=%p&to=%P&
// text=%a&id=%I: an SMS a person sent, handled as Twilio's inbound messages
// are (keywords change consent, anything else becomes sms.replied). A
// keyword's reply is the answer's body, which smsbox sends back to the
// sender.
func (s *Server) handleKannelInbound(w http.ResponseWriter, r *http.Request, q url.Values) {
	from := s.kannelPhone(q.Get("from"))
	if from == "" {
		s.fail(w, r, nudge.FieldErrorf("from", "is required"))
		return
	}
	in := &kannelInbound{From: from, To: strings.TrimSpace(q.Get("to")), Text: q.Get("text"),
		ID: strings.TrimSpace(q.Get("id"))}
	if in.ID == "" {
		// No %I in the get-url: the same words from the same number at the
		// same Kannel time are one message.
		sum := sha256.Sum256([]byte(in.From + "\x00" + in.To + "\x00" + in.Text + "\x00" + q.Get("ts")))
		in.ID = hex.EncodeToString(sum[:12])
	}
	log := s.logger.With(slog.String("kannel_id", in.ID), slog.String("from", nudge.MaskAddress(nudge.ChannelSMS, in.From)))
	reply, err := s.handleInboundSMS(r.Context(), log, &inboundSMS{Provider: "kannel", ID: in.ID,
		// Only Kannel's own id (%I) tells a retry from a second STOP.
		Dedupe: q.Get("id") != "",
		From:   in.From, To: in.To, Body: in.Text, Props: map[string]any{"kannel_id": in.ID}},
		policy.ParseKeyword(in.Text, s.twilio.keywords))
	if err != nil {
		s.fail(w, r, fmt.Errorf("kannel inbound %s: %w", in.ID, err))
		return
	}
	writeKannel(w, reply)
}

// kannelInbound is an SMS as an sms-service's get-url reports it.
type kannelInbound struct {
	ID, From, To, Text string
}

// kannelPhone reads a sender number as the SMSC wrote it (+13125550100,
// 0013125550100 or 13125550100) as E.164 when it can; else as written, which
// then matches no contact.
func (s *Server) kannelPhone(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if p, err := s.contacts.Phone(v); err == nil && p != "" {
		return p
	}
	digits := strings.TrimPrefix(v, "00")
	if strings.Trim(digits, "0123456789") == "" {
		if p, err := s.contacts.Phone("+" + digits); err == nil && p != "" {
			return p
		}
	}
	return v
}

// writeKannel answers 200 in plain text; smsbox sends a non-empty body of
// an sms-service's answer back to the sender as an SMS.
func writeKannel(w http.ResponseWriter, reply string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(reply))
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
