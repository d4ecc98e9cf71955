package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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
)

// Defaults of Config.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultDialTimeout = 5 * time.Second
	// SignatureTolerance is how far Verify lets a signature's timestamp be
	// from now.
	SignatureTolerance = 5 * time.Minute
)

// Header names of every call.
const (
	HeaderSignature = "Nudge-Signature"
	HeaderID        = "Nudge-Webhook-Id"
	HeaderEvent     = "Nudge-Event"
)

// Config configures a Sender.
type Config struct {
	// Secret signs the journey webhook calls (required). Subscriptions
	// sign with their own (Post's secret).
	Secret string
	// AllowPrivate lets calls reach loopback, private and link-local
	// addresses: for local testing only.
	AllowPrivate bool
	// AllowHosts are host names (matched as written in the URL) or address
	// prefixes ("10.1.0.0/16", "192.168.1.5") calls may reach even though
	// they are private.
	AllowHosts  []string
	Timeout     time.Duration // a whole call; default DefaultTimeout
	DialTimeout time.Duration // default DefaultDialTimeout
	Clock       nudge.Clock   // default nudge.SystemClock
	UserAgent   string        // default "Nudge-Webhook/1"
}

// Sender POSTs JSON to user-set URLs, signed, through the SSRF guard. It is
// safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
}

var _ nudge.Sender = (*Sender)(nil)

// New returns a Sender, or an EINVALID error.
func New(cfg Config) (*Sender, error) {
	if cfg.Secret == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: a signing secret is required")
	}
	if cfg.Timeout < 0 || cfg.DialTimeout < 0 {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: timeouts must not be negative")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	cfg.UserAgent = cmp.Or(cfg.UserAgent, "Nudge-Webhook/1")
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	g, err := newGuard(cfg.AllowPrivate, cfg.AllowHosts)
	if err != nil {
		return nil, nudge.Errorf(nudge.EINVALID, "%v", err)
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would be what the guard sees
		DialContext:           g.dialContext(cfg.DialTimeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
	return &Sender{cfg: cfg, client: &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// Never follow: a redirect could lead anywhere, and a receiver
		// that moved should be reconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Channel returns nudge.ChannelWebhook.
func (s *Sender) Channel() string { return nudge.ChannelWebhook }

// Send POSTs o.Text (JSON) to o.To, signed with Config.Secret; the
// Nudge-Webhook-Id is the message's idempotency key. Accepted calls are
// reported delivered.
func (s *Sender) Send(ctx context.Context, o *nudge.Outbound) (*nudge.SendResult, error) {
	id := cmp.Or(o.IdempotencyKey, o.MessageID)
	if _, err := s.Post(ctx, o.To, s.cfg.Secret, id, "", []byte(o.Text)); err != nil {
		return nil, err
	}
	return &nudge.SendResult{ProviderID: id, Status: nudge.MessageDelivered}, nil
}

// Post POSTs body to rawURL signed with secret, and returns the response's
// status code (0 when there was none). The error is nil on a 2xx, a
// *nudge.SendError (Permanent or not, see the package doc) otherwise.
// event, when set, is sent as the Nudge-Event header.
func (s *Sender) Post(ctx context.Context, rawURL, secret, id, event string, body []byte) (int, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, &nudge.SendError{Code: "invalid_url", Message: "want an absolute http or https URL", Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, &nudge.SendError{Code: "invalid_url", Message: err.Error(), Permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set(HeaderSignature, Sign([]byte(secret), s.cfg.Clock.Now(), body))
	if id != "" {
		req.Header.Set(HeaderID, id)
	}
	if event != "" {
		req.Header.Set(HeaderEvent, event)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, classifyError(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection when cheap
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return code, nil
	}
	se := &nudge.SendError{Code: strconv.Itoa(code), Message: summary(resp.Status, text)}
	switch {
	case code >= 300 && code < 400:
		se.Permanent = true
		se.Message = "redirect not followed (to " + resp.Header.Get("Location") + ")"
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		se.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), s.cfg.Clock.Now())
	default:
		se.Permanent = true
	}
	return code, se
}

// classifyError turns a failed call into a SendError: a refused address is
// permanent; a timeout or a connection that failed is temporary.
func classifyError(err error) error {
	var be *BlockedError
	if errors.As(err, &be) {
		return &nudge.SendError{Code: "blocked_address", Message: be.Error(), Permanent: true}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return &nudge.SendError{Code: "timeout", Message: err.Error()}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &nudge.SendError{Code: "connection", Message: err.Error()}
}

func summary(status string, body []byte) string {
	b := strings.TrimSpace(string(body))
	if len(b) > 200 {
		b = b[:200] + "…"
	}
	if b == "" {
		return status
	}
	return status + ": " + b
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped
// at an hour.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

// Sign returns the Nudge-Signature header value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a Nudge-Signature header against body: the signature must
// match and its timestamp be within SignatureTolerance of now. Several v1
// values (a secret being rotated) are accepted if any matches.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	var ts string
	var sigs []string
	for kv := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("webhook: malformed signature header")
	}
	if d := now.Sub(time.Unix(t, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return fmt.Errorf("webhook: signature timestamp %d is more than %s from now", t, SignatureTolerance)
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return errors.New("webhook: signature mismatch")
}
