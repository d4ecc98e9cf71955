package kannel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/kannel"
)

// smsbox is a local server that answers sendsms as Kannel's smsbox does.
type smsbox struct {
	mu     sync.Mutex
	got    []url.Values
	status int
	body   string
	delay  time.Duration
}

func (b *smsbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/cgi-bin/sendsms" {
		http.NotFound(w, r)
		return
	}
	_ = r.ParseForm()
	b.mu.Lock()
	b.got = append(b.got, r.Form)
	status, body, delay := b.status, b.body, b.delay
	b.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func newSender(t *testing.T, b *smsbox, opts ...func(*kannel.Config)) *kannel.Sender {
	t.Helper()
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	cfg := kannel.Config{SendSMSURL: srv.URL + "/cgi-bin/sendsms", Username: "nudge", Password: "p@ss word",
		From: "+18005550199", DLRURL: "http://127.0.0.1:8080/v1/webhooks/kannel/dlr?key=k"}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := kannel.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func outbound(text string) *nudge.Outbound {
	return &nudge.Outbound{MessageID: "m1", Channel: nudge.ChannelSMS, To: "+13125550100", Text: text}
}

func TestSendAccepted(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			b := &smsbox{status: 202, body: "0: Accepted for delivery"}
			s := newSender(t, b, func(c *kannel.Config) { c.Method = method })
			res, err := s.Send(context.Background(), outbound("Your webinar starts in 1 hour"))
			if err != nil {
				t.Fatal(err)
			}
			if res.ProviderID != "m1" || res.Status != nudge.MessageSent || res.Segments != 1 {
				t.Errorf("result = %+v", res)
			}
			f := b.got[0]
			for k, want := range map[string]string{
				"username": "nudge", "password": "p@ss word", "from": "+18005550199", "to": "+13125550100",
				"text": "Your webinar starts in 1 hour", "charset": "UTF-8", "coding": "", "dlr-mask": "31",
				"dlr-url": "http://127.0.0.1:8080/v1/webhooks/kannel/dlr?key=k&message_id=m1&type=%d",
			} {
				if got := f.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestSendUnicode(t *testing.T) {
	b := &smsbox{status: 202, body: "0: Accepted for delivery"}
	s := newSender(t, b, func(c *kannel.Config) { c.DLRMask = 19 })
	res, err := s.Send(context.Background(), outbound("See you soon 🎉 — Ünïcode"))
	if err != nil {
		t.Fatal(err)
	}
	f := b.got[0]
	if f.Get("coding") != "2" || f.Get("charset") != "UTF-8" || f.Get("text") != "See you soon 🎉 — Ünïcode" || f.Get("dlr-mask") != "19" {
		t.Errorf("form = %v", f)
	}
	if res.Segments != 1 {
		t.Errorf("segments = %d", res.Segments)
	}
}

func TestSendStatusCallbackOverrides(t *testing.T) {
	b := &smsbox{status: 202, body: "3: Queued for later delivery"}
	s := newSender(t, b)
	m := outbound("hi")
	m.StatusCallback = "http://10.0.0.2/dlr"
	m.From = "NUDGE"
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := b.got[0].Get("dlr-url"); got != "http://10.0.0.2/dlr?message_id=m1&type=%d" {
		t.Errorf("dlr-url = %q", got)
	}
	if got := b.got[0].Get("from"); got != "NUDGE" {
		t.Errorf("from = %q", got)
	}
}

func TestSendRefused(t *testing.T) {
	for _, c := range []struct {
		name      string
		status    int
		body      string
		permanent bool
	}{
		{"missing receiver", 400, "Missing receiver number", true},
		{"not allowed", 403, "Authorization failed for sendsms", false},
		{"number denied", 400, "Number compiled by white/black lists is not allowed", true},
		{"sending failed", 503, "Sending failed.", false},
		{"internal", 500, "", false},
		{"too many", 429, "slow down", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSender(t, &smsbox{status: c.status, body: c.body})
			_, err := s.Send(context.Background(), outbound("hi"))
			var se *nudge.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *nudge.SendError", err)
			}
			if se.Permanent != c.permanent {
				t.Errorf("permanent = %v, want %v (%v)", se.Permanent, c.permanent, se)
			}
			if c.body != "" && se.Message != c.body {
				t.Errorf("message = %q", se.Message)
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	b := &smsbox{status: 202, body: "0: Accepted for delivery", delay: 2 * time.Second}
	s := newSender(t, b, func(c *kannel.Config) { c.Timeout = 50 * time.Millisecond })
	_, err := s.Send(context.Background(), outbound("hi"))
	var se *nudge.SendError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("err = %v, want an unknown outcome (not a SendError)", err)
	}
	if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "p%40ss") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestSendConnectRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	s, err := kannel.New(kannel.Config{SendSMSURL: u + "/cgi-bin/sendsms", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Send(context.Background(), outbound("hi"))
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Permanent || se.Code != "connect" {
		t.Fatalf("err = %v, want a temporary connect SendError", err)
	}
}

func TestSendRefusedBeforeRequest(t *testing.T) {
	b := &smsbox{status: 202}
	s := newSender(t, b)
	for name, m := range map[string]*nudge.Outbound{
		"no receiver": {MessageID: "m1", Text: "hi"},
		"too long":    outbound(strings.Repeat("x", 10000)),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.Send(context.Background(), m)
			var se *nudge.SendError
			if !errors.As(err, &se) || !se.Permanent {
				t.Fatalf("err = %v, want a permanent SendError", err)
			}
		})
	}
	if len(b.got) != 0 {
		t.Errorf("smsbox was called %d times", len(b.got))
	}
}

func TestNewInvalid(t *testing.T) {
	for name, cfg := range map[string]kannel.Config{
		"no url":      {Username: "u", Password: "p"},
		"bad url":     {SendSMSURL: "ftp://x/cgi-bin/sendsms", Username: "u", Password: "p"},
		"no user":     {SendSMSURL: "http://127.0.0.1:13013/cgi-bin/sendsms"},
		"bad mask":    {SendSMSURL: "http://127.0.0.1:13013/cgi-bin/sendsms", Username: "u", Password: "p", DLRMask: 64},
		"bad method":  {SendSMSURL: "http://127.0.0.1:13013/cgi-bin/sendsms", Username: "u", Password: "p", Method: "PUT"},
		"bad dlr url": {SendSMSURL: "http://127.0.0.1:13013/cgi-bin/sendsms", Username: "u", Password: "p", DLRURL: "/dlr"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := kannel.New(cfg); nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestDLRURL(t *testing.T) {
	for base, want := range map[string]string{
		"http://h/dlr":        "http://h/dlr?message_id=a+b%2F1&type=%d",
		"http://h/dlr?key=k":  "http://h/dlr?key=k&message_id=a+b%2F1&type=%d",
		"http://h/dlr?key=k&": "http://h/dlr?key=k&message_id=a+b%2F1&type=%d",
		"http://h/dlr?":       "http://h/dlr?message_id=a+b%2F1&type=%d",
	} {
		if got := kannel.DLRURL(base, "a b/1"); got != want {
			t.Errorf("DLRURL(%q) = %q, want %q", base, got, want)
		}
	}
}
