package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/sim"
)

// manyRegistrations is the webinar example with n registrants instead of
// eight: each registers over three days before the webinar, and one in
// three attends.
func manyRegistrations(b *testing.B, n int) *example {
	ex := readExample(b, "webinar")
	var csv, tl bytes.Buffer
	csv.WriteString("id,email,phone,timezone,lifecycle_stage,first_name,sms_consent\n")
	for i := range n {
		fmt.Fprintf(&csv, "b-%d,b%d@example.com,+1 415 555 %04d,America/Los_Angeles,lead,B%d,opted_in\n", i, i, i%10000, i)
		at := int64(1772467200) + int64(i)*3*86400/int64(n) // from 2026-03-02T16:00Z
		fmt.Fprintf(&tl, `{"type":"track","userId":"b-%d","event":"webinar.registered","timestamp":%q,"properties":{"webinar_id":"w-7","starts_at":"2026-03-05T17:00:00Z"}}`+"\n",
			i, time.Unix(at, 0).UTC().Format(time.RFC3339))
		if i%3 == 0 {
			fmt.Fprintf(&tl, `{"type":"track","userId":"b-%d","event":"webinar.attended","timestamp":"2026-03-05T17:02:00Z","properties":{"webinar_id":"w-7"}}`+"\n", i)
		}
	}
	events, err := sim.ReadTimeline("timeline.jsonl", &tl, exampleRegion)
	if err != nil {
		b.Fatal(err)
	}
	ex.contacts, ex.events = csv.Bytes(), events
	return ex
}

// BenchmarkConsolePages measures the server's time to answer the main
// pages (signed in, over loopback) on a store where the webinar journey
// ran for NUDGE_BENCH_CONSOLE_N registrants (default 2000).
func BenchmarkConsolePages(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("NUDGE_BENCH_CONSOLE_N")); err == nil && v > 0 {
		n = v
	}
	c := newConsoleWith(b, nudgetest.SQLite(b), manyRegistrations(b, n))
	ms := allMessages(b, c.store)
	b.Logf("%d registrants, %d messages", n, len(ms))
	client := newConsoleClient(b, c.url)
	client.signIn("viewer@example.com")
	for _, path := range []string{
		"/", "/journeys/" + journeyID, "/messages", "/messages?channel=sms", "/messages?step=no-such-step",
		"/messages/" + ms[len(ms)/2].ID, "/contacts/b-1",
	} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				if status, _, body := client.do("GET", path, nil); status != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", path, status, snippet(body))
				}
			}
		})
	}
}
