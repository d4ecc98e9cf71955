package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/postgres"
)

// startMain runs the server exactly as `nudge serve` does, on a free port,
// and returns it with the admin key it printed on first start.
func startMain(t *testing.T, db string, opts ...func(*Main)) (*Main, string) {
	t.Helper()
	var out bytes.Buffer
	cfg := DefaultConfig()
	cfg.DB, cfg.Addr = db, "127.0.0.1:0"
	m := &Main{Config: cfg, Stdout: &out}
	for _, o := range opts {
		o(m)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Main.Run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	key := regexp.MustCompile(`nk_[0-9a-f]+_[0-9a-f]+`).FindString(out.String())
	if key == "" {
		t.Fatalf("first start printed no admin key:\n%s", out.String())
	}
	return m, key
}

type client struct {
	t    *testing.T
	base string
	key  string
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *client) do(method, path, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// testEndToEnd is the journey of a newcomer through the README, on one store.
func testEndToEnd(t *testing.T, db string) {
	m, key := startMain(t, db)
	c := &client{t: t, base: "http://" + m.Addr(), key: key}

	if code := c.do("POST", "/v1/identify", `{"userId":"u-42","traits":{"email":"jane@example.com","phone":"(415) 555-2671","timezone":"America/Los_Angeles","lifecycle_stage":"lead","plan":"pro"}}`, nil); code != 200 {
		t.Fatalf("identify: %d", code)
	}
	for range 2 { // a retried call is stored once
		if code := c.do("POST", "/v1/track", `{"userId":"u-42","event":"webinar.registered","messageId":"m-1","properties":{"webinar_id":"w-7"}}`, nil); code != 200 {
			t.Fatalf("track: %d", code)
		}
	}
	var batch struct {
		Stored int `json:"stored"`
		Errors []struct {
			Field string `json:"field"`
		} `json:"errors"`
	}
	c.do("POST", "/v1/batch", `{"batch":[
		{"type":"track","userId":"u-42","event":"page.viewed","properties":{"path":"/pricing"}},
		{"type":"track","userId":"u-43","event":"order.completed","properties":{"price":"ten"}}]}`, &batch)
	if batch.Stored != 1 || len(batch.Errors) != 1 || batch.Errors[0].Field != "batch[1].properties.price" {
		t.Errorf("batch: stored %d, errors %+v; want 1 stored and batch[1].properties.price reported", batch.Stored, batch.Errors)
	}

	var contact struct {
		Phone      string         `json:"phone"`
		Attributes map[string]any `json:"attributes"`
	}
	if code := c.do("GET", "/v1/contacts/u-42", "", &contact); code != 200 {
		t.Fatalf("get contact: %d", code)
	}
	if contact.Phone != "+14155552671" || contact.Attributes["plan"] != "pro" {
		t.Errorf("contact = %+v; want phone +14155552671 and plan pro", contact)
	}
	var events struct {
		Events []struct {
			Type string `json:"type"`
			Name string `json:"name"`
		} `json:"events"`
	}
	c.do("GET", "/v1/contacts/u-42/events", "", &events)
	var names []string
	for _, e := range events.Events {
		names = append(names, e.Type+":"+e.Name)
	}
	if got, want := strings.Join(names, " "), "track:page.viewed track:webinar.registered identify:"; got != want {
		t.Errorf("events newest first = %q; want %q", got, want)
	}

	if code := c.do("POST", "/v1/contacts/u-42/consent", `{"channel":"sms","status":"opted_out","source":"keyword","evidence":{"keyword":"STOP"}}`, nil); code != 201 {
		t.Fatalf("record consent: %d", code)
	}
	if code := c.do("DELETE", "/v1/contacts/u-42", "", nil); code != 204 {
		t.Fatalf("erase: %d", code)
	}
	if code := c.do("GET", "/v1/contacts/u-42", "", nil); code != 404 {
		t.Errorf("get erased contact: %d; want 404", code)
	}
	// The number comes back under a new id: it is still opted out.
	c.do("POST", "/v1/identify", `{"userId":"u-99","traits":{"phone":"+1 415 555 2671"}}`, nil)
	var consent struct {
		Consent []struct {
			Channel, Purpose, Status string
		} `json:"consent"`
	}
	c.do("GET", "/v1/contacts/u-99/consent", "", &consent)
	var sms string
	for _, s := range consent.Consent {
		if s.Channel == "sms" && s.Purpose == "marketing" {
			sms = s.Status
		}
	}
	if sms != "opted_out" {
		t.Errorf("sms consent of the re-created number = %q; want opted_out", sms)
	}

	anon := &client{t: t, base: c.base}
	if code := anon.do("GET", "/v1/contacts/u-99", "", nil); code != 401 {
		t.Errorf("no key: %d; want 401", code)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		if code := anon.do("GET", path, "", nil); code != want {
			t.Errorf("GET %s: %d; want %d", path, code, want)
		}
	}
	resp, err := http.Get(c.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("nudge_ingest_events_total")) {
		t.Errorf("/metrics has no nudge_ingest_events_total")
	}
}

func TestEndToEndSQLite(t *testing.T) {
	testEndToEnd(t, filepath.Join(t.TempDir(), "nudge.db"))
}

func TestEndToEndPostgres(t *testing.T) {
	testEndToEnd(t, postgresURL(t))
}

// postgresURL makes a fresh schema on NUDGE_TEST_POSTGRES and returns a URL
// whose search_path is that schema, for Main to open as `--db` would.
func postgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("NUDGE_TEST_POSTGRES")
	if base == "" {
		t.Skip("NUDGE_TEST_POSTGRES is not set; set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the PostgreSQL tests")
	}
	ctx := context.Background()
	admin, err := postgres.Open(ctx, base)
	if err != nil {
		t.Fatalf("NUDGE_TEST_POSTGRES: %v", err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "nudge_e2e_" + hex.EncodeToString(b)
	if err := admin.CreateSchema(ctx, schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.DropSchema(context.Background(), schema)
		admin.Close()
	})
	return nudgetest.WithSearchPath(base, schema)
}

func TestImportCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"import", "contacts", "--db", db, "../../examples/contacts.csv"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), "imported 4, updated 0, rejected 2"; !strings.HasPrefix(got, want) {
		t.Errorf("summary = %q; want it to start %q", got, want)
	}
	for _, want := range []string{`line 5, column "phone"`, `line 6, column "timezone"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not report %s:\n%s", want, stderr.String())
		}
	}
	// Importing again updates instead of creating.
	stdout.Reset()
	if err := run(context.Background(), []string{"import", "contacts", "--db", db, "../../examples/contacts.csv"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, want := stdout.String(), "imported 0, updated 4, rejected 2"; !strings.HasPrefix(got, want) {
		t.Errorf("second summary = %q; want it to start %q", got, want)
	}
}

func TestAPIKeyRoles(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	m, _ := startMain(t, db)
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"apikey", "create", "--db", db, "--role", "ingest", "--name", "segment"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, base: "http://" + m.Addr(), key: strings.TrimSpace(stdout.String())}
	if code := c.do("POST", "/v1/track", `{"userId":"u1","event":"signed.up"}`, nil); code != 200 {
		t.Errorf("ingest key tracking: %d; want 200", code)
	}
	if code := c.do("GET", "/v1/contacts/u1", "", nil); code != 403 {
		t.Errorf("ingest key reading a contact: %d; want 403", code)
	}
	if err := run(context.Background(), []string{"apikey", "create", "--db", db, "--role", "owner"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--role") {
		t.Errorf("bad role: err = %v; want one naming --role", err)
	}
}

func TestServeUnreachableDatabase(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DB, cfg.Addr = "postgres://postgres@127.0.0.1:1/test?connect_timeout=2", "127.0.0.1:0"
	m := &Main{Config: cfg}
	err := m.Run(context.Background())
	m.Close()
	if err == nil || !strings.Contains(err.Error(), "open database") {
		t.Fatalf("Run = %v; want an error saying the database could not be opened", err)
	}
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// finishes, and what it sent is stored.
func TestGracefulShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "nudge.db")
	m, key := startMain(t, db)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/contacts/import", pr)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "text/csv")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("import during shutdown: %v", err)
		}
		done <- resp
	}()
	fmt.Fprintln(pw, "id,email")
	fmt.Fprintln(pw, "a1,a1@example.com")
	time.Sleep(100 * time.Millisecond) // let the server start reading the body

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintln(pw, "a2,a2@example.com")
	pw.Close()

	resp := <-done
	if resp == nil {
		t.Fatal("no response")
	}
	var sum struct {
		Imported int `json:"imported"`
	}
	json.NewDecoder(resp.Body).Decode(&sum)
	resp.Body.Close()
	if resp.StatusCode != 200 || sum.Imported != 2 {
		t.Errorf("import in flight at shutdown: status %d, imported %d; want 200, 2", resp.StatusCode, sum.Imported)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ContactGet(context.Background(), "a2"); err != nil {
		t.Errorf("contact sent during shutdown was not stored: %v", err)
	}
}

// TestJourneyEndToEnd: a journey published over the API reacts to an event
// sent over the API: the server's engine loop queues the welcome email and
// its delivery loop renders it and hands it to the provider (the log sink).
func TestJourneyEndToEnd(t *testing.T) {
	templates := t.TempDir()
	if err := os.WriteFile(filepath.Join(templates, "welcome.email.liquid"), []byte("Subject: Welcome, {{ contact.email }}\n\nHello!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, key := startMain(t, filepath.Join(t.TempDir(), "nudge.db"), func(m *Main) { m.Delivery.Templates = templates })
	c := &client{t: t, base: "http://" + m.Addr(), key: key}
	const yaml = `id: welcome
name: Welcome
trigger:
  event: signed.up
steps:
  - id: hello
    email: {template: welcome}
`
	if code := c.do("POST", "/v1/journeys", yaml, nil); code != 200 && code != 201 {
		t.Fatalf("publish: %d", code)
	}
	c.do("POST", "/v1/identify", `{"userId":"u1","traits":{"email":"u1@example.com"}}`, nil)
	if code := c.do("POST", "/v1/track", `{"userId":"u1","event":"signed.up"}`, nil); code != 200 {
		t.Fatalf("track: %d", code)
	}
	ctx := context.Background()
	var msgs []*nudge.Message
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if msgs, err = m.Store.MessageList(ctx, &nudge.MessageListParams{ContactID: "u1"}); err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 0 && msgs[0].Status == nudge.MessageSent {
			break
		}
	}
	if len(msgs) != 1 || msgs[0].Template != "welcome" || msgs[0].Channel != nudge.ChannelEmail || msgs[0].Status != nudge.MessageSent {
		t.Fatalf("messages for u1 = %+v; want one welcome email, sent", msgs)
	}
	hist, err := m.Store.MessageHistory(ctx, msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []string
	for _, h := range hist {
		statuses = append(statuses, h.Status)
	}
	if got, want := strings.Join(statuses, " "), "queued sending sent"; got != want {
		t.Errorf("status history = %q; want %q", got, want)
	}
	ds, err := m.Store.DecisionList(ctx, &nudge.DecisionListParams{ContactID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, d := range ds {
		outcomes = append(outcomes, d.Outcome)
	}
	if got := strings.Join(outcomes, " "); !strings.HasPrefix(got, "entered sent") {
		t.Errorf("decisions = %q; want entered, sent, …", got)
	}
}

// TestDeliveryConfigFromEnvironment: every provider setting the README lists
// is read from its environment variable.
func TestDeliveryConfigFromEnvironment(t *testing.T) {
	for name, val := range map[string]string{
		"NUDGE_KANNEL_SENDSMS_URL": "http://127.0.0.1:13013/cgi-bin/sendsms",
		"NUDGE_KANNEL_USERNAME":    "nudge",
		"NUDGE_KANNEL_PASSWORD":    "pw",
		"NUDGE_KANNEL_KEY":         "0123456789abcdefghijklmn",
		"NUDGE_TWILIO_ACCOUNT_SID": "AC1",
		"NUDGE_SMTP_URL":           "smtp://mail.example.com:587",
		"NUDGE_PUBLIC_URL":         "https://nudge.example.com",
		"NUDGE_RATE_LIMITS":        "from:default,sms=100",
		"NUDGE_SES_TOPIC_ARNS":     "arn:aws:sns:us-east-1:1:a, arn:aws:sns:us-east-1:1:b",
	} {
		t.Setenv(name, val)
	}
	c := defaultDeliveryConfig()
	got := []string{c.KannelURL, c.KannelUser, c.KannelPassword, c.KannelKey, c.TwilioAccountSID, c.SMTPURL, c.PublicURL, c.RateLimits, strings.Join(c.SESTopicARNs, "|")}
	want := []string{"http://127.0.0.1:13013/cgi-bin/sendsms", "nudge", "pw", "0123456789abcdefghijklmn", "AC1", "smtp://mail.example.com:587", "https://nudge.example.com", "from:default,sms=100", "arn:aws:sns:us-east-1:1:a|arn:aws:sns:us-east-1:1:b"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("delivery config = %q; want %q", got, want)
	}
}

// TestLogOnlySendsNothing: with LogOnly (serve --demo) every channel,
// webhooks included, is the log sink, whatever else is configured.
func TestLogOnlySendsNothing(t *testing.T) {
	c := DeliveryConfig{LogOnly: true, TwilioAccountSID: "AC1", TwilioAuthToken: "t", SMSFrom: "+15005550006", SMTPURL: "smtp://mail.example.com"}
	ss, err := c.senders(slog.New(slog.DiscardHandler), nudge.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS, nudge.ChannelWebhook} {
		if _, ok := ss[ch].(*logsink.Sender); !ok {
			t.Errorf("%s sender = %T; want the log sink", ch, ss[ch])
		}
	}
}
