// Package twilio sends SMS through Twilio's REST API and reads what Twilio
// sends back: status callbacks and inbound messages, whose
// X-Twilio-Signature ValidateSignature checks.
//
// Send classifies Twilio's answers for the delivery worker: an invalid
// number (21211) or an opted-out recipient (21610) is a permanent
// *nudge.SendError, a 429 (or 20429), a full queue or a 5xx a temporary one
// (with RetryAfter from the Retry-After header), and a timeout or a dropped
// connection after the request was written is a plain error: Twilio may or
// may not have accepted the message.
package twilio

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nudge/nudge"
)

// DefaultBaseURL is Twilio's API host.
const DefaultBaseURL = "https://api.twilio.com"

// MaxBody is Twilio's limit on a message body, in characters. Longer bodies
// are refused before any request is made.
const MaxBody = 1600

// Config configures a Sender.
type Config struct {
	BaseURL    string // default DefaultBaseURL; tests point it at a local server
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) and MessagingServiceSID a
	// messaging service ("MG…"); one of them is required. When both are set
	// the messaging service wins, as it does at Twilio. An Outbound's own
	// From overrides both.
	From                string
	MessagingServiceSID string
	HTTPClient          *http.Client  // default a client keeping 64 idle connections; its own Timeout still applies
	Timeout             time.Duration // per request; default 10s
}

// Sender sends SMS through Twilio. It is safe for concurrent use.
type Sender struct {
	cfg      Config
	client   *http.Client
	endpoint string
}

var _ nudge.Sender = (*Sender)(nil)

// New returns a Sender, or an EINVALID error when the configuration is
// incomplete.
func New(cfg Config) (*Sender, error) {
	cfg.BaseURL = strings.TrimRight(cmp.Or(cfg.BaseURL, DefaultBaseURL), "/")
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "twilio: account SID and auth token are required")
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "twilio: From or MessagingServiceSID is required")
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "twilio: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	client := cfg.HTTPClient
	if client == nil {
		// The default transport keeps 2 idle connections per host, too few
		// for parallel delivery workers, which then dial and TLS-handshake
		// on most sends.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		client = &http.Client{Transport: t}
	}
	return &Sender{
		cfg:      cfg,
		client:   client,
		endpoint: cfg.BaseURL + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
	}, nil
}

// Channel returns nudge.ChannelSMS.
func (s *Sender) Channel() string { return nudge.ChannelSMS }

var serviceSID = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)

// form builds the request body. Twilio has no idempotency field, so
// m.IdempotencyKey is not sent; the worker's at-most-once rule covers it.
func (s *Sender) form(m *nudge.Outbound) url.Values {
	f := url.Values{}
	f.Set("To", m.To)
	switch {
	case m.From != "" && serviceSID.MatchString(m.From):
		f.Set("MessagingServiceSid", m.From)
	case m.From != "":
		f.Set("From", m.From)
	case s.cfg.MessagingServiceSID != "":
		f.Set("MessagingServiceSid", s.cfg.MessagingServiceSID)
	default:
		f.Set("From", s.cfg.From)
	}
	f.Set("Body", m.Text)
	if m.StatusCallback != "" {
		f.Set("StatusCallback", m.StatusCallback)
	}
	return f
}

// message is the part of Twilio's Message resource Nudge reads.
type message struct {
	SID          string          `json:"sid"`
	Status       string          `json:"status"`
	NumSegments  json.RawMessage `json:"num_segments"` // a string ("2") in Twilio's JSON
	ErrorCode    json.RawMessage `json:"error_code"`   // a number or null
	ErrorMessage string          `json:"error_message"`
}

// apiError is Twilio's error body.
type apiError struct {
	Code     json.RawMessage `json:"code"`
	Message  string          `json:"message"`
	MoreInfo string          `json:"more_info"`
}

// Send posts m to Twilio's Messages resource.
func (s *Sender) Send(ctx context.Context, m *nudge.Outbound) (*nudge.SendResult, error) {
	if m.To == "" {
		return nil, &nudge.SendError{Code: "21604", Message: "a 'To' phone number is required", Permanent: true}
	}
	if n := utf8.RuneCountInString(m.Text); n > MaxBody {
		return nil, &nudge.SendError{Code: "21617",
			Message:   fmt.Sprintf("the message body has %d characters, more than Twilio's %d", n, MaxBody),
			Permanent: true}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(s.form(m).Encode()))
	if err != nil {
		return nil, fmt.Errorf("twilio: send: %w", err)
	}
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if notSent(err) {
			// The connection was never made: Twilio cannot have the message.
			return nil, &nudge.SendError{Code: "connect", Message: err.Error()}
		}
		return nil, fmt.Errorf("twilio: send (outcome unknown): %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if resp.StatusCode < 300 {
			return nil, fmt.Errorf("twilio: send (accepted, response lost): %w", err)
		}
		body = nil // the status code alone classifies the refusal
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return accepted(body)
	}
	return nil, refusal(resp, body)
}

// notSent reports whether err happened before the request could reach
// Twilio: a failed dial or DNS lookup.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func accepted(body []byte) (*nudge.SendResult, error) {
	var msg message
	err := json.Unmarshal(body, &msg)
	if err == nil && msg.SID == "" {
		err = errors.New("no sid")
	}
	if err != nil {
		// Twilio said yes but the SID is lost: the message may go out, so
		// this is not a refusal.
		return nil, fmt.Errorf("twilio: send (accepted, unreadable response %.200q): %w", body, err)
	}
	switch msg.Status {
	case "failed", "undelivered", "canceled":
		return nil, &nudge.SendError{
			Code:      cmp.Or(rawString(msg.ErrorCode), msg.Status),
			Message:   cmp.Or(msg.ErrorMessage, "message "+msg.SID+" is "+msg.Status),
			Permanent: true,
		}
	}
	res := &nudge.SendResult{ProviderID: msg.SID, Status: nudge.MessageSent}
	if msg.Status == "delivered" || msg.Status == "read" {
		res.Status = nudge.MessageDelivered
	}
	res.Segments, _ = strconv.Atoi(rawString(msg.NumSegments))
	return res, nil
}

// refusal classifies a non-2xx answer.
func refusal(resp *http.Response, body []byte) *nudge.SendError {
	var ae apiError
	_ = json.Unmarshal(body, &ae) // a proxy's HTML page classifies by status alone
	e := &nudge.SendError{
		Code:    cmp.Or(rawString(ae.Code), strconv.Itoa(resp.StatusCode)),
		Message: cmp.Or(ae.Message, strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil))), resp.Status),
	}
	switch {
	case e.Code == "21610":
		e.Permanent, e.OptedOut = true, true
	case resp.StatusCode == http.StatusTooManyRequests || e.Code == "20429":
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case e.Code == "21611" || e.Code == "30001": // queue full: it drains
	case resp.StatusCode >= 500:
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Bad credentials fail every message alike; keep them queued so
		// fixing the configuration sends them, until their maximum age.
	default:
		e.Permanent = true
	}
	return e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(n)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// rawString returns a JSON number or string as text, "" for null or absent.
func rawString(r json.RawMessage) string {
	s := strings.TrimSpace(string(r))
	if s == "" || s == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(r, &str) == nil {
		return str
	}
	return s
}
