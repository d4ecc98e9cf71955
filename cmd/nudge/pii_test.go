package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// syncBuffer is a buffer the server's goroutines write log lines into while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The personal data of the contact TestLogsHoldNoPersonalData drives through
// the server; none of it may reach the log.
const (
	piiEmail = "jane.pii-7731@example.com"
	piiPhone = "+14155550123"
	piiBody  = "BODY-MARKER-5519" // in every message body
)

// piiPatterns find the phone number however it is written (+14155550123,
// 14155550123, (415) 555-0123, 415.555.0123 …), the email address, and the
// message bodies.
var piiPatterns = []*regexp.Regexp{
	regexp.MustCompile(`415[\s().\-]*555[\s().\-]*0123`),
	regexp.MustCompile(`(?i)` + regexp.QuoteMeta(piiEmail)),
	regexp.MustCompile(`(?i)jane\.pii-7731`), // the local part alone identifies her
	regexp.MustCompile(regexp.QuoteMeta(piiBody)),
}

// TestLogsHoldNoPersonalData runs the real server with a JSON logger at debug
// level, drives a contact with a distinctive email and phone through
// identify, consent, a journey that sends her an email and an SMS (log
// sinks), requests that fail validation with her data in them, and an
// erase; then it scans every log line for her phone number, email address
// and message bodies. Masked forms (+1415•••0123, ja•••@example.com) are fine.
func TestLogsHoldNoPersonalData(t *testing.T) {
	templates := t.TempDir()
	for name, text := range map[string]string{
		"pii-welcome.email.liquid": "Subject: Welcome {{ contact.email }}\n\nHello {{ contact.email }}, your number is {{ contact.phone }}. " + piiBody + "\n",
		"pii-text.sms.liquid":      "Hi {{ contact.email }}, texting {{ contact.phone }}. " + piiBody,
	} {
		if err := os.WriteFile(filepath.Join(templates, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logs := &syncBuffer{}
	// 12:00 in Los Angeles on a Monday: outside any quiet hours.
	clock := nudgetest.NewClock(time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC))
	m, key := startMain(t, filepath.Join(t.TempDir(), "nudge.db"), func(m *Main) {
		m.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		m.Clock = clock
		m.Delivery.Templates = templates
	})
	c := &client{t: t, base: "http://" + m.Addr(), key: key}

	const journey = `id: pii
name: PII
trigger:
  event: signed.up
steps:
  - id: hello
    email: {template: pii-welcome}
  - id: text
    sms: {template: pii-text, purpose: reminder}
`
	if code := c.do("POST", "/v1/journeys", journey, nil); code != 200 && code != 201 {
		t.Fatalf("publish: %d", code)
	}
	if code := c.do("POST", "/v1/identify", `{"userId":"u-pii","traits":{"email":"`+piiEmail+`","phone":"(415) 555-0123","timezone":"America/Los_Angeles","first_name":"Jane"}}`, nil); code != 200 {
		t.Fatalf("identify: %d", code)
	}
	if code := c.do("POST", "/v1/contacts/u-pii/consent", `{"channel":"sms","status":"opted_in","source":"form","evidence":{"text":"Texts to `+piiPhone+`, yes","form_url":"https://example.com/signup"}}`, nil); code != 201 {
		t.Fatalf("consent opt-in: %d", code)
	}
	if code := c.do("POST", "/v1/track", `{"userId":"u-pii","event":"signed.up","properties":{"email":"`+piiEmail+`","phone":"`+piiPhone+`"}}`, nil); code != 200 {
		t.Fatalf("track: %d", code)
	}

	// Both messages reach the log sinks.
	ctx := context.Background()
	var msgs []*nudge.Message
	sent := func() int {
		n := 0
		for _, msg := range msgs {
			if msg.Status == nudge.MessageSent {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if msgs, err = m.Store.MessageList(ctx, &nudge.MessageListParams{ContactID: "u-pii"}); err != nil {
			t.Fatal(err)
		}
		if sent() == 2 {
			break
		}
	}
	if sent() != 2 {
		var got []string
		for _, msg := range msgs {
			got = append(got, msg.Channel+":"+msg.Status)
		}
		ds, _ := m.Store.DecisionList(ctx, &nudge.DecisionListParams{ContactID: "u-pii"})
		var why []string
		for _, d := range ds {
			why = append(why, d.Outcome+": "+d.Message)
		}
		t.Fatalf("messages for u-pii = %v; want an email and an SMS, sent\ndecisions: %q", got, why)
	}

	// Requests that fail, with her data in them.
	for _, r := range []struct{ method, path, body string }{
		{"PATCH", "/v1/contacts/u-pii", `{"email":"` + piiEmail + `@@", "phone":"` + piiPhone + `"}`},
		{"PATCH", "/v1/contacts/u-pii", `{"phone":"` + piiPhone + `999999"}`},
		{"PUT", "/v1/contacts/u-pii", `{"email":"` + piiEmail + `","phone":"` + piiPhone + `","timezone":"Mars/Olympus"}`},
		{"POST", "/v1/identify", `{"userId":"u-pii","traits":{"phone":"` + piiPhone + `","email":"` + piiEmail + `","timezone":"Nowhere/Land"}}`},
		{"POST", "/v1/track", `{"userId":"u-pii","event":"","properties":{"phone":"` + piiPhone + `"}}`},
		{"POST", "/v1/contacts/u-pii/consent", `{"channel":"sms","status":"maybe","evidence":{"phone":"` + piiPhone + `"}}`},
		{"POST", "/v1/suppressions", `{"channel":"sms","address":"` + piiPhone + `x","reason":"complaint"}`},
		{"DELETE", "/v1/suppressions/sms/" + piiPhone, ""},
		{"GET", "/v1/contacts/" + piiPhone, ""},
		{"GET", "/v1/contacts/" + piiEmail, ""},
	} {
		if code := c.do(r.method, r.path, r.body, nil); code < 400 || code >= 500 {
			t.Errorf("%s %s: %d; want a 4xx", r.method, r.path, code)
		}
	}

	// A consent change and an erase.
	if code := c.do("POST", "/v1/contacts/u-pii/consent", `{"channel":"sms","status":"opted_out","source":"keyword","evidence":{"keyword":"STOP","text":"STOP from `+piiPhone+`"}}`, nil); code != 201 {
		t.Fatalf("consent opt-out: %d", code)
	}
	if code := c.do("POST", "/v1/suppressions", `{"channel":"email","address":"`+piiEmail+`","reason":"complaint"}`, nil); code/100 != 2 {
		t.Fatalf("suppress email: %d", code)
	}
	if code := c.do("DELETE", "/v1/contacts/u-pii", "", nil); code != 204 {
		t.Fatalf("erase: %d", code)
	}
	// The number comes back: the engine and ingest see it again.
	if code := c.do("POST", "/v1/identify", `{"userId":"u-pii-2","traits":{"phone":"`+piiPhone+`","email":"`+piiEmail+`"}}`, nil); code != 200 {
		t.Fatalf("identify again: %d", code)
	}
	time.Sleep(2 * enginePoll) // let the engine and delivery loops log what they do
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sinkLines := 0
	for i, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %v\n%s", i+1, err, line)
			continue
		}
		if strings.HasPrefix(rec["msg"].(string), "logsink:") {
			sinkLines++
		}
		for _, re := range piiPatterns {
			if loc := re.FindStringIndex(line); loc != nil {
				t.Errorf("log line %d holds personal data %q:\n%s", i+1, line[loc[0]:loc[1]], line)
			}
		}
	}
	if sinkLines < 2 {
		t.Errorf("%d log lines from the log sinks; want one per message sent (is the scan looking at the right log?)\n%s", sinkLines, out)
	}
	t.Logf("scanned %d log lines", len(lines))
}
