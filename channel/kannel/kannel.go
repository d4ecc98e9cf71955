package kannel

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/template"
)

// DLR report types, Kannel's dlr-mask bits and the values of %d.
const (
	DLRDelivered   = 1  // delivered to the phone
	DLRUndelivered = 2  // not delivered to the phone
	DLRBuffered    = 4  // queued at the SMSC
	DLRSMSCSuccess = 8  // accepted by the SMSC
	DLRSMSCFail    = 16 // rejected by the SMSC
)

// DefaultDLRMask asks for every report type (1+2+4+8+16).
const DefaultDLRMask = 31

// MaxBody caps a message's text, in characters: Kannel splits a long text
// into parts itself (up to its max-messages), and 1,600 is what Nudge allows
// on any SMS provider.
const MaxBody = 1600

// Config configures a Sender.
type Config struct {
	// SendSMSURL is smsbox's sendsms URL, e.g.
	// http://127.0.0.1:13013/cgi-bin/sendsms.
	SendSMSURL string
	Username   string // a sendsms-user group's username
	Password   string
	From       string // sender number or alphanumeric id; an Outbound's From overrides it
	// DLRURL is Nudge's delivery-report endpoint, e.g.
	// http://127.0.0.1:8080/v1/webhooks/kannel/dlr?key=SECRET; the Sender
	// appends message_id and type=%d. Empty, and with no StatusCallback on
	// the Outbound, no report is asked for.
	DLRURL     string
	DLRMask    int           // default DefaultDLRMask
	Method     string        // GET (default) or POST
	HTTPClient *http.Client  // default a client keeping 64 idle connections
	Timeout    time.Duration // per request; default 10s
}

// Sender sends SMS through Kannel's smsbox. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
}

var _ nudge.Sender = (*Sender)(nil)

// New returns a Sender, or an EINVALID error when the configuration is
// incomplete.
func New(cfg Config) (*Sender, error) {
	cfg.DLRMask = cmp.Or(cfg.DLRMask, DefaultDLRMask)
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	cfg.Method = strings.ToUpper(cmp.Or(cfg.Method, http.MethodGet))
	if u, err := url.Parse(cfg.SendSMSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "kannel: sendsms URL %q is not an http(s) URL", cfg.SendSMSURL)
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "kannel: username and password (a sendsms-user group) are required")
	}
	if cfg.DLRMask < 0 || cfg.DLRMask > DefaultDLRMask {
		return nil, nudge.Errorf(nudge.EINVALID, "kannel: dlr-mask %d is not a sum of 1, 2, 4, 8 and 16", cfg.DLRMask)
	}
	if cfg.Method != http.MethodGet && cfg.Method != http.MethodPost {
		return nil, nudge.Errorf(nudge.EINVALID, "kannel: method %q is neither GET nor POST", cfg.Method)
	}
	if cfg.DLRURL != "" {
		if u, err := url.Parse(cfg.DLRURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, nudge.Errorf(nudge.EINVALID, "kannel: DLR URL %q is not an http(s) URL", cfg.DLRURL)
		}
	}
	client := cfg.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		client = &http.Client{Transport: t}
	}
	return &Sender{cfg: cfg, client: client}, nil
}

// Channel returns nudge.ChannelSMS.
func (s *Sender) Channel() string { return nudge.ChannelSMS }

// DLRURL returns the dlr-url for message id on base: base with message_id
// and type=%d added, the %d left for Kannel to replace with the report type.
// The id is query-escaped; IDs of letters, digits, '-' and '_' stay as they
// are, which keeps Kannel from reading a %XX escape as one of its own codes.
func DLRURL(base, id string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	return base + sep + "message_id=" + url.QueryEscape(id) + "&type=%d"
}

// params builds sendsms's parameters. Text goes as UTF-8 (charset=UTF-8);
// a text with a character outside GSM-7 asks for UCS-2 (coding=2), or
// Kannel would replace that character with '?'.
func (s *Sender) params(m *nudge.Outbound) (url.Values, template.Encoding) {
	p := url.Values{}
	p.Set("username", s.cfg.Username)
	p.Set("password", s.cfg.Password)
	if from := cmp.Or(m.From, s.cfg.From); from != "" {
		p.Set("from", from)
	}
	p.Set("to", m.To)
	p.Set("text", m.Text)
	p.Set("charset", "UTF-8")
	enc := template.Segments(m.Text)
	if enc.Charset == template.UCS2 {
		p.Set("coding", "2")
	}
	if base := cmp.Or(m.StatusCallback, s.cfg.DLRURL); base != "" && m.MessageID != "" {
		p.Set("dlr-mask", strconv.Itoa(s.cfg.DLRMask))
		p.Set("dlr-url", DLRURL(base, m.MessageID))
	}
	return p, enc
}

// Send hands m to smsbox.
func (s *Sender) Send(ctx context.Context, m *nudge.Outbound) (*nudge.SendResult, error) {
	if m.To == "" {
		return nil, &nudge.SendError{Code: "no-receiver", Message: "a receiver number is required", Permanent: true}
	}
	if n := len([]rune(m.Text)); n > MaxBody {
		return nil, &nudge.SendError{Code: "too-long",
			Message: fmt.Sprintf("the message has %d characters, more than %d", n, MaxBody), Permanent: true}
	}
	p, enc := s.params(m)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var req *http.Request
	var err error
	if s.cfg.Method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.SendSMSURL, strings.NewReader(p.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		u := s.cfg.SendSMSURL
		if strings.Contains(u, "?") {
			u += "&" + p.Encode()
		} else {
			u += "?" + p.Encode()
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("kannel: send: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if notSent(err) {
			return nil, &nudge.SendError{Code: "connect", Message: redact(err.Error(), s.cfg.Password)}
		}
		// The URL holds the password: keep it out of the error.
		return nil, fmt.Errorf("kannel: send (outcome unknown): %s", redact(err.Error(), s.cfg.Password))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// smsbox answered 2xx: the message is queued; its words
		// ("0: Accepted for delivery") add nothing.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return &nudge.SendResult{ProviderID: m.MessageID, Status: nudge.MessageSent, Segments: enc.Segments}, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10)) // the status alone classifies
	return nil, refusal(resp.StatusCode, strings.TrimSpace(string(bytes.ToValidUTF8(body, nil))))
}

// refusal classifies a non-2xx answer of smsbox.
func refusal(status int, text string) *nudge.SendError {
	e := &nudge.SendError{Code: strconv.Itoa(status), Message: cmp.Or(text[:min(len(text), 200)], http.StatusText(status))}
	switch {
	case status == http.StatusTooManyRequests, status >= 500:
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		// Bad credentials or a denied IP fail every message alike; keep
		// them queued so fixing the configuration sends them.
	default:
		e.Permanent = true
	}
	return e
}

// notSent reports whether err happened before the request could reach
// smsbox: a failed dial or DNS lookup.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func redact(s, password string) string {
	if password == "" {
		return s
	}
	s = strings.ReplaceAll(s, url.QueryEscape(password), "REDACTED")
	return strings.ReplaceAll(s, password, "REDACTED")
}
