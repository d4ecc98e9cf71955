package twilio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/twilio"
)

const (
	accountSID = "AC00000000000000000000000000000001"
	authToken  = "secret-token"
	fromNumber = "+15005550006"
	serviceSID = "MG0123456789abcdef0123456789abcdef"
)

// Recipients the fake Twilio answers in a fixed way, like Twilio's magic
// test numbers.
const (
	toOK       = "+14155550100"
	toInvalid  = "+15005550001" // 21211
	toOptedOut = "+15005550004" // 21610
	toBusy     = "+14155550429" // 429 with Retry-After
	toBroken   = "+14155550500" // 500
	toHang     = "+14155550999" // never answers
	toDrop     = "+14155550998" // closes the connection
	toQueued   = "+14155550030" // 30001 queue overflow
)

// fakeTwilio is a local server speaking Twilio's Messages wire format.
type fakeTwilio struct {
	t    testing.TB
	srv  *httptest.Server
	mu   sync.Mutex
	got  []url.Values
	hang chan struct{}
}

func newFakeTwilio(t testing.TB) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{t: t, hang: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.hang)
		f.srv.Close()
	})
	return f
}

func (f *fakeTwilio) forms() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.got...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code":      code,
		"message":   msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+accountSID+"/Messages.json" {
		twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != accountSID || pass != authToken {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		f.t.Errorf("Content-Type = %q", ct)
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, 400, 20001, err.Error())
		return
	}
	form := r.PostForm
	f.mu.Lock()
	f.got = append(f.got, form)
	f.mu.Unlock()
	if form.Get("From") == "" && form.Get("MessagingServiceSid") == "" {
		twilioError(w, 400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message")
		return
	}
	switch to := form.Get("To"); to {
	case toInvalid:
		twilioError(w, 400, 21211, "The 'To' number "+to+" is not a valid phone number.")
	case toOptedOut:
		twilioError(w, 400, 21610, "Attempt to send to unsubscribed recipient")
	case toBusy:
		w.Header().Set("Retry-After", "7")
		twilioError(w, 429, 20429, "Too Many Requests")
	case toBroken:
		twilioError(w, 500, 20500, "Internal Server Error")
	case toQueued:
		twilioError(w, 400, 30001, "Queue overflow")
	case toHang:
		select {
		case <-r.Context().Done():
		case <-f.hang:
		}
	case toDrop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	default:
		writeJSON(w, 201, map[string]any{
			"account_sid":           accountSID,
			"api_version":           "2010-04-01",
			"body":                  form.Get("Body"),
			"date_created":          "Thu, 24 Aug 2023 05:01:45 +0000",
			"date_sent":             nil,
			"date_updated":          "Thu, 24 Aug 2023 05:01:45 +0000",
			"direction":             "outbound-api",
			"error_code":            nil,
			"error_message":         nil,
			"from":                  form.Get("From"),
			"messaging_service_sid": form.Get("MessagingServiceSid"),
			"num_media":             "0",
			"num_segments":          "2",
			"price":                 nil,
			"price_unit":            "USD",
			"sid":                   "SM1234567890abcdef1234567890abcdef",
			"status":                "queued",
			"subresource_uris":      map[string]string{"media": "/2010-04-01/Accounts/" + accountSID + "/Messages/SM1234567890abcdef1234567890abcdef/Media.json"},
			"to":                    to,
			"uri":                   "/2010-04-01/Accounts/" + accountSID + "/Messages/SM1234567890abcdef1234567890abcdef.json",
		})
	}
}

func mustSender(t *testing.T, cfg twilio.Config) *twilio.Sender {
	t.Helper()
	cfg.AccountSID = cmpOr(cfg.AccountSID, accountSID)
	cfg.AuthToken = cmpOr(cfg.AuthToken, authToken)
	if cfg.MessagingServiceSID == "" {
		cfg.From = cmpOr(cfg.From, fromNumber)
	}
	s, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestSend(t *testing.T) {
	f := newFakeTwilio(t)
	s := mustSender(t, twilio.Config{BaseURL: f.srv.URL})
	if got := s.Channel(); got != nudge.ChannelSMS {
		t.Errorf("Channel() = %q", got)
	}
	body := "Your cart misses you 🛒 — reply STOP to opt out"
	res, err := s.Send(context.Background(), &nudge.Outbound{
		MessageID:      "msg_1",
		IdempotencyKey: "idem_1",
		Channel:        nudge.ChannelSMS,
		To:             toOK,
		Text:           body,
		StatusCallback: "https://nudge.example.com/webhooks/twilio/status",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &nudge.SendResult{ProviderID: "SM1234567890abcdef1234567890abcdef", Status: nudge.MessageSent, Segments: 2}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantForm := url.Values{
		"To":             {toOK},
		"From":           {fromNumber},
		"Body":           {body},
		"StatusCallback": {"https://nudge.example.com/webhooks/twilio/status"},
	}
	if diff := cmp.Diff([]url.Values{wantForm}, f.forms()); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
}

func TestSendFrom(t *testing.T) {
	tests := []struct {
		name    string
		cfg     twilio.Config
		msgFrom string
		want    url.Values
	}{
		{"config number", twilio.Config{From: fromNumber}, "", url.Values{"From": {fromNumber}}},
		{"config service", twilio.Config{MessagingServiceSID: serviceSID}, "", url.Values{"MessagingServiceSid": {serviceSID}}},
		{"service wins over number", twilio.Config{From: fromNumber, MessagingServiceSID: serviceSID}, "", url.Values{"MessagingServiceSid": {serviceSID}}},
		{"message number", twilio.Config{MessagingServiceSID: serviceSID}, "+18005550199", url.Values{"From": {"+18005550199"}}},
		{"message service", twilio.Config{From: fromNumber}, serviceSID, url.Values{"MessagingServiceSid": {serviceSID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTwilio(t)
			tt.cfg.BaseURL = f.srv.URL
			s := mustSender(t, tt.cfg)
			if _, err := s.Send(context.Background(), &nudge.Outbound{To: toOK, From: tt.msgFrom, Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			got := f.forms()[0]
			got.Del("To")
			got.Del("Body")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sender fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendRefused(t *testing.T) {
	tests := []struct {
		name string
		to   string
		want nudge.SendError
	}{
		{"invalid number", toInvalid, nudge.SendError{Code: "21211", Permanent: true}},
		{"opted out", toOptedOut, nudge.SendError{Code: "21610", Permanent: true, OptedOut: true}},
		{"too many requests", toBusy, nudge.SendError{Code: "20429", RetryAfter: 7 * time.Second}},
		{"server error", toBroken, nudge.SendError{Code: "20500"}},
		{"queue overflow", toQueued, nudge.SendError{Code: "30001"}},
	}
	f := newFakeTwilio(t)
	s := mustSender(t, twilio.Config{BaseURL: f.srv.URL})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Send(context.Background(), &nudge.Outbound{To: tt.to, Text: "hello"})
			if res != nil {
				t.Errorf("result = %+v, want nil", res)
			}
			var se *nudge.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *nudge.SendError", err)
			}
			if se.Message == "" {
				t.Error("Message is empty")
			}
			got := *se
			got.Message = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SendError (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSendBadCredentials(t *testing.T) {
	f := newFakeTwilio(t)
	s := mustSender(t, twilio.Config{BaseURL: f.srv.URL, AuthToken: "wrong"})
	_, err := s.Send(context.Background(), &nudge.Outbound{To: toOK, Text: "hi"})
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Code != "20003" || se.Permanent {
		t.Fatalf("err = %#v, want a temporary SendError 20003", err)
	}
}

func TestSendOutcomeUnknown(t *testing.T) {
	tests := []struct {
		name string
		to   string
	}{
		{"timeout", toHang},
		{"dropped connection", toDrop},
	}
	f := newFakeTwilio(t)
	s := mustSender(t, twilio.Config{BaseURL: f.srv.URL, Timeout: 200 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res, err := s.Send(context.Background(), &nudge.Outbound{To: tt.to, Text: "hi"})
			if err == nil {
				t.Fatalf("Send = %+v, want an error", res)
			}
			var se *nudge.SendError
			if errors.As(err, &se) {
				t.Fatalf("err = %v is a SendError; the outcome is unknown", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send took %v", d)
			}
		})
	}
	if _, err := s.Send(context.Background(), &nudge.Outbound{To: toHang, Text: "hi"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout err = %v, want context.DeadlineExceeded in its chain", err)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := mustSender(t, twilio.Config{BaseURL: "http://" + addr})
	_, err = s.Send(context.Background(), &nudge.Outbound{To: toOK, Text: "hi"})
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Permanent {
		t.Fatalf("err = %v, want a temporary SendError: nothing reached Twilio", err)
	}
}

func TestSendBadInput(t *testing.T) {
	f := newFakeTwilio(t)
	s := mustSender(t, twilio.Config{BaseURL: f.srv.URL})
	tests := []struct {
		name string
		m    nudge.Outbound
		code string
	}{
		{"10,000-character body", nudge.Outbound{To: toOK, Text: strings.Repeat("a", 10_000)}, "21617"},
		{"no recipient", nudge.Outbound{Text: "hi"}, "21604"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Send(context.Background(), &tt.m)
			var se *nudge.SendError
			if !errors.As(err, &se) || !se.Permanent || se.Code != tt.code {
				t.Fatalf("err = %#v, want a permanent SendError %s", err, tt.code)
			}
		})
	}
	if n := len(f.forms()); n != 0 {
		t.Errorf("%d requests reached Twilio, want 0", n)
	}
	// 1,600 emoji are 1,600 characters: within the limit.
	if _, err := s.Send(context.Background(), &nudge.Outbound{To: toOK, Text: strings.Repeat("😀", 1600)}); err != nil {
		t.Errorf("1,600 emoji: %v", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  twilio.Config
		ok   bool
	}{
		{"number", twilio.Config{AccountSID: accountSID, AuthToken: authToken, From: fromNumber}, true},
		{"service", twilio.Config{AccountSID: accountSID, AuthToken: authToken, MessagingServiceSID: serviceSID}, true},
		{"no sender", twilio.Config{AccountSID: accountSID, AuthToken: authToken}, false},
		{"no token", twilio.Config{AccountSID: accountSID, From: fromNumber}, false},
		{"no account", twilio.Config{AuthToken: authToken, From: fromNumber}, false},
		{"bad base URL", twilio.Config{BaseURL: "ftp://x", AccountSID: accountSID, AuthToken: authToken, From: fromNumber}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := twilio.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("code = %q, want EINVALID", nudge.ErrorCode(err))
			}
		})
	}
}

// BenchmarkSend measures the client side against the local fake Twilio
// (both in this process); ns/op over parallel senders approximates
// messages/s as 1e9/(ns/op).
func BenchmarkSend(b *testing.B) {
	f := newFakeTwilio(b)
	s, err := twilio.New(twilio.Config{BaseURL: f.srv.URL, AccountSID: accountSID, AuthToken: authToken, From: fromNumber})
	if err != nil {
		b.Fatal(err)
	}
	m := &nudge.Outbound{To: toOK, Text: "Your order has shipped. Reply STOP to opt out."}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Send(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
