package api

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// Amazon SES reports bounces, complaints, deliveries, opens and clicks
// through Amazon SNS, which POSTs a signed JSON envelope to
// POST /v1/webhooks/ses. Nudge:
//
//   - accepts only the topics it is told of (Config.SESTopicARNs): anyone
//     can make an SNS topic and sign with Amazon's keys, so the topic is
//     what says the message is the workspace's own;
//   - verifies the signature (SignatureVersion 1: RSA over SHA-1, 2: over
//     SHA-256) with the certificate at SigningCertURL, which must be an
//     https URL on an sns.*.amazonaws.com host and is fetched over
//     verified TLS (and cached);
//   - confirms a SubscriptionConfirmation by fetching its SubscribeURL
//     (the same host rule), and records an UnsubscribeConfirmation in the
//     log;
//   - maps a Notification's SES message (notifications: notificationType;
//     event publishing: eventType) onto the email event path of
//     emailevents.go: a permanent Bounce fails the message and suppresses
//     the address (hard_bounce), a transient one marks it undelivered; a
//     Complaint suppresses and opts out; Delivery, Open and Click become
//     statuses and email.* events. The SNS MessageId (and the recipient's
//     index) is the event id, so SNS's retries are stored once.

const (
	maxSNSBytes = 256 << 10 // SNS messages are at most 256 KB
	// snsCertMax bounds the certificate cache (certificates rotate
	// rarely; a flood of distinct URLs cannot grow it without limit).
	snsCertMax = 32
)

// snsHost is the host an SNS certificate or subscribe URL may be on.
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// sesHooks holds the SES endpoint's configuration and certificate cache.
type sesHooks struct {
	topics map[string]bool
	client *http.Client

	mu    sync.Mutex
	certs map[string]*x509.Certificate
}

func newSESHooks(topics []string, client *http.Client) *sesHooks {
	if len(topics) == 0 {
		return nil
	}
	h := &sesHooks{topics: map[string]bool{}, client: client, certs: map[string]*x509.Certificate{}}
	for _, t := range topics {
		h.topics[strings.TrimSpace(t)] = true
	}
	if h.client == nil {
		h.client = &http.Client{Timeout: 10 * time.Second}
	}
	return h
}

// snsMessage is the SNS envelope.
type snsMessage struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token"`
	TopicArn         string `json:"TopicArn"`
	Subject          *string
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	SubscribeURL     string `json:"SubscribeURL"`
}

// stringToSign is what SNS signs: name and value lines of the type's
// fields, in this order, Subject only when the message has one.
func (m *snsMessage) stringToSign() string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// checkSNSURL refuses a URL SNS would not use: not https, or not on an
// sns.*.amazonaws.com host.
func checkSNSURL(field, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil || u.Port() != "" || !snsHost.MatchString(strings.ToLower(u.Hostname())) {
		return nil, nudge.Errorf(nudge.EFORBIDDEN, "%s %.200q is not an https URL on an sns.<region>.amazonaws.com host", field, raw)
	}
	return u, nil
}

// cert returns the signing certificate at raw, fetched once.
func (h *sesHooks) cert(ctx context.Context, raw string) (*x509.Certificate, error) {
	u, err := checkSNSURL("SigningCertURL", raw)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(u.Path, ".pem") {
		return nil, nudge.Errorf(nudge.EFORBIDDEN, "SigningCertURL %.200q is not a .pem certificate", raw)
	}
	h.mu.Lock()
	c := h.certs[raw]
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the SNS signing certificate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the SNS signing certificate: %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetch the SNS signing certificate: %w", err)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the SNS signing certificate is not a PEM certificate")
	}
	c, err = x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the SNS signing certificate: %w", err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("the SNS signing certificate has a %T key, not RSA", c.PublicKey)
	}
	h.mu.Lock()
	if len(h.certs) >= snsCertMax {
		clear(h.certs)
	}
	h.certs[raw] = c
	h.mu.Unlock()
	return c, nil
}

// verify checks m's topic and signature. An EFORBIDDEN error is the
// sender's fault (403); another is ours or the network's (5xx: SNS
// retries).
func (h *sesHooks) verify(ctx context.Context, m *snsMessage) error {
	if !h.topics[m.TopicArn] {
		return nudge.Errorf(nudge.EFORBIDDEN, "TopicArn %.200q is not one this server accepts (NUDGE_SES_TOPIC_ARNS)", m.TopicArn)
	}
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return nudge.Errorf(nudge.EFORBIDDEN, "SignatureVersion %.10q is not 1 or 2", m.SignatureVersion)
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return nudge.Errorf(nudge.EFORBIDDEN, "the Signature is missing or not base64")
	}
	c, err := h.cert(ctx, m.SigningCertURL)
	if err != nil {
		return err
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(m.stringToSign()))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(m.stringToSign()))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(c.PublicKey.(*rsa.PublicKey), hash, digest, sig); err != nil {
		return nudge.Errorf(nudge.EFORBIDDEN, "the Signature does not sign this message")
	}
	return nil
}

// handleSES serves POST /v1/webhooks/ses.
func (s *Server) handleSES(w http.ResponseWriter, r *http.Request) {
	if s.ses == nil {
		s.fail(w, r, nudge.Errorf(nudge.ENOTFOUND, "SES webhooks are not configured on this server (no NUDGE_SES_TOPIC_ARNS)"))
		return
	}
	body, err := readBody(w, r, maxSNSBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var m snsMessage
	if err := json.Unmarshal(body, &m); err != nil {
		s.fail(w, r, nudge.Errorf(nudge.EINVALID, "the body is not an SNS message: %v", err))
		return
	}
	// The topic and signature first: an unsigned body learns nothing more.
	if err := s.ses.verify(r.Context(), &m); err != nil {
		if nudge.ErrorCode(err) == nudge.EFORBIDDEN {
			s.logger.WarnContext(r.Context(), "ses webhook: rejected", slog.Any("error", err), slog.String("topic_arn", m.TopicArn))
		}
		s.fail(w, r, err)
		return
	}
	switch m.Type {
	case "SubscriptionConfirmation":
		if err := s.ses.confirm(r.Context(), &m); err != nil {
			s.fail(w, r, err)
			return
		}
		s.logger.InfoContext(r.Context(), "ses webhook: SNS subscription confirmed", slog.String("topic_arn", m.TopicArn))
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "confirmed": m.TopicArn})
	case "UnsubscribeConfirmation":
		s.logger.WarnContext(r.Context(), "ses webhook: the SNS subscription was removed; SES events stop arriving", slog.String("topic_arn", m.TopicArn))
		writeJSON(w, http.StatusOK, map[string]any{"success": true})
	case "Notification":
		events, errs := parseSESNotification(m.MessageID, []byte(m.Message))
		s.applyEmailEvents(w, r, events, errs, s.clock.Now())
	default:
		s.fail(w, r, nudge.FieldErrorf("Type", "%.40q is not an SNS message type", m.Type))
	}
}

// confirm fetches a SubscriptionConfirmation's SubscribeURL, which is how
// SNS is told the endpoint wants the topic's messages.
func (h *sesHooks) confirm(ctx context.Context, m *snsMessage) error {
	u, err := checkSNSURL("SubscribeURL", m.SubscribeURL)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("confirm the SNS subscription: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("confirm the SNS subscription: %s", resp.Status)
	}
	return nil
}

// sesNotification is the part of an SES notification (or event
// publishing record) Nudge reads.
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Mail             struct {
		MessageID     string `json:"messageId"`
		Destination   []string
		Headers       []struct{ Name, Value string } `json:"headers"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		Timestamp         string `json:"timestamp"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		Timestamp             string `json:"timestamp"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp    string   `json:"timestamp"`
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
	} `json:"delivery"`
	Open *struct {
		Timestamp string `json:"timestamp"`
	} `json:"open"`
	Click *struct {
		Timestamp string `json:"timestamp"`
		Link      string `json:"link"`
	} `json:"click"`
}

// parseSESNotification turns an SES message into email events, one per
// recipient it names. Types that change nothing (Send, DeliveryDelay, …)
// give one event of no kind, reported "ignored".
func parseSESNotification(snsID string, msg []byte) ([]*emailEvent, []error) {
	var n sesNotification
	if err := json.Unmarshal(msg, &n); err != nil {
		return []*emailEvent{nil}, []error{nudge.FieldErrorf("Message", "not an SES notification: %v", err)}
	}
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	// The Message-ID Nudge's SMTP channel set names the outbox message;
	// SES keeps it in the original headers.
	mid := n.Mail.CommonHeaders.MessageID
	for _, h := range n.Mail.Headers {
		if mid == "" && strings.EqualFold(h.Name, "Message-ID") {
			mid = h.Value
		}
	}
	mid = bareMessageID(mid)
	at := func(ts string) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, ts)
		return t.UTC()
	}
	base := func(i int, kind, email string, ts string) *emailEvent {
		id := snsID
		if i > 0 {
			id = fmt.Sprintf("%s:%d", snsID, i)
		}
		return &emailEvent{provider: "ses", id: id, kind: kind, email: strings.TrimSpace(email), messageID: mid, providerID: mid,
			at: at(ts), detail: map[string]any{"provider_status": typ, "ses_message_id": n.Mail.MessageID}}
	}
	var evs []*emailEvent
	switch typ {
	case "Bounce":
		if n.Bounce == nil || len(n.Bounce.BouncedRecipients) == 0 {
			return []*emailEvent{nil}, []error{nudge.FieldErrorf("Message.bounce.bouncedRecipients", "a bounce names its recipients")}
		}
		for i, r := range n.Bounce.BouncedRecipients {
			ev := base(i, emailBounce, r.EmailAddress, n.Bounce.Timestamp)
			ev.hard = n.Bounce.BounceType == "Permanent"
			ev.detail["bounce_type"] = n.Bounce.BounceType
			for k, v := range map[string]string{"bounce_subtype": n.Bounce.BounceSubType, "smtp_status": r.Status, "reason": r.DiagnosticCode} {
				if v != "" {
					ev.detail[k] = truncateRunes(v, 200)
				}
			}
			evs = append(evs, ev)
		}
	case "Complaint":
		if n.Complaint == nil || len(n.Complaint.ComplainedRecipients) == 0 {
			return []*emailEvent{nil}, []error{nudge.FieldErrorf("Message.complaint.complainedRecipients", "a complaint names its recipients")}
		}
		for i, r := range n.Complaint.ComplainedRecipients {
			ev := base(i, emailComplaint, r.EmailAddress, n.Complaint.Timestamp)
			if n.Complaint.ComplaintFeedbackType != "" {
				ev.detail["feedback_type"] = truncateRunes(n.Complaint.ComplaintFeedbackType, 50)
			}
			evs = append(evs, ev)
		}
	case "Delivery":
		if n.Delivery == nil {
			return []*emailEvent{nil}, []error{nudge.FieldErrorf("Message.delivery", "required for a Delivery")}
		}
		rcpts := n.Delivery.Recipients
		if len(rcpts) == 0 {
			rcpts = []string{""}
		}
		for i, r := range rcpts {
			ev := base(i, emailDelivered, r, n.Delivery.Timestamp)
			if n.Delivery.SMTPResponse != "" {
				ev.detail["smtp_response"] = truncateRunes(n.Delivery.SMTPResponse, 200)
			}
			evs = append(evs, ev)
		}
	case "Open":
		ts := ""
		if n.Open != nil {
			ts = n.Open.Timestamp
		}
		evs = append(evs, base(0, emailOpen, first(n.Mail.Destination), ts))
	case "Click":
		if n.Click == nil || n.Click.Link == "" {
			return []*emailEvent{nil}, []error{nudge.FieldErrorf("Message.click.link", "a click needs its link")}
		}
		ev := base(0, emailClick, first(n.Mail.Destination), n.Click.Timestamp)
		ev.url = n.Click.Link
		evs = append(evs, ev)
	default: // Send, Reject, DeliveryDelay, Rendering Failure, Subscription: nothing to apply
		evs = append(evs, base(0, "", first(n.Mail.Destination), ""))
	}
	return evs, make([]error, len(evs))
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
