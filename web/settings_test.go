package web_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/template"
)

// TestSettingsProviderStatus delivers the seeded texts through a local
// server speaking Twilio's wire format that refuses them, then accepts
// them: the settings page shows Twilio's last error (the number masked)
// and then its last success beside it.
func TestSettingsProviderStatus(t *testing.T) {
	c := newConsole(t)
	ctx := context.Background()
	var accept atomic.Bool
	tw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if !accept.Load() {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"code": 21211, "status": 400,
				"message": "The 'To' number " + r.PostForm.Get("To") + " is not a valid phone number."})
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"sid": "SM" + strings.Repeat("0", 31) + "1", "status": "queued", "num_segments": "1"})
	}))
	t.Cleanup(tw.Close)
	sms, err := twilio.New(twilio.Config{BaseURL: tw.URL, AccountSID: "AC123", AuthToken: "token", From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	set, err := template.Load(os.DirFS(filepath.Join("..", "examples", "webinar", "templates")), template.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock := nudgetest.NewClock(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	w, err := delivery.New(delivery.Config{Store: c.store, Clock: clock, Templates: set, Batch: 1, Claims: 1, Logger: slog.New(slog.DiscardHandler),
		Senders: map[string]nudge.Sender{nudge.ChannelSMS: sms}, MaxAge: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	twilioStatus := func() *nudge.ProviderStatus {
		ps, err := c.store.ProviderList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Channel == nudge.ChannelSMS && p.Provider == "twilio" {
				return p
			}
		}
		return nil
	}
	// deliverUntil runs passes of one message until ok, or fails when the
	// outbox runs dry.
	deliverUntil := func(ok func(*nudge.ProviderStatus) bool) {
		t.Helper()
		for {
			if p := twilioStatus(); p != nil && ok(p) {
				return
			}
			n, err := w.RunOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("the outbox ran dry before Twilio was called as the test needs")
			}
		}
	}
	admin := newConsoleClient(t, c.url)
	admin.signIn("admin@example.com")
	row := func() string {
		t.Helper()
		status, _, body := admin.do("GET", "/settings", nil)
		if status != http.StatusOK {
			t.Fatalf("GET /settings: %d", status)
		}
		m := regexp.MustCompile(`(?s)<tr data-provider="sms/twilio">.*?</tr>`).FindString(body)
		if m == "" {
			t.Fatalf("the settings page has no row for sms/twilio:\n%s", snippet(body))
		}
		return m
	}

	deliverUntil(func(p *nudge.ProviderStatus) bool { return !p.LastErrorAt.IsZero() })
	failed := row()
	if !strings.Contains(failed, "21211: The &#39;To&#39; number [phone] is not a valid phone number.") || !strings.Contains(failed, "2030-01-01 09:00 UTC") {
		t.Errorf("after a refusal the row says %s; want the 21211 error at 2030-01-01 09:00 UTC", failed)
	}
	if regexp.MustCompile(`\+\d{7,}`).MatchString(failed) {
		t.Errorf("the row shows a phone number: %s", failed)
	}
	if !strings.Contains(failed, `<td class="last-success">never</td>`) {
		t.Errorf("after refusals only the row says %s; want no success", failed)
	}

	accept.Store(true)
	clock.Advance(5 * time.Minute)
	deliverUntil(func(p *nudge.ProviderStatus) bool { return !p.LastSuccessAt.IsZero() })
	ok := row()
	if !strings.Contains(ok, `<td class="last-success"><time datetime="2030-01-01T09:05:00Z">`) || !strings.Contains(ok, "21211: ") {
		t.Errorf("after a success the row says %s; want the success at 09:05 and the 21211 error kept", ok)
	}
}
