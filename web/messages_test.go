package web_test

import (
	"cmp"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nudge/nudge"
)

// TestMessagesLogFilters: each filter of the messages log, and all of them
// together, shows on its pages exactly the seed's messages that match,
// newest first; a cursor that names no message is refused with a sentence.
func TestMessagesLogFilters(t *testing.T) {
	c := newConsole(t)
	ms := allMessages(t, c.store)
	slices.SortStableFunc(ms, func(a, b *nudge.Message) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	rowRE := regexp.MustCompile(`data-message="([^"]+)"`)
	nextRE := regexp.MustCompile(`<a href="([^"]+)" rel="next">`)
	// shown follows the pages of a search and returns the messages shown.
	shown := func(q url.Values) []string {
		t.Helper()
		got := []string{}
		path := "/messages?" + q.Encode()
		for page := 0; path != ""; page++ {
			if page > len(ms)/50+1 {
				t.Fatalf("%s: more pages than messages", q.Encode())
			}
			status, _, body := viewer.do("GET", path, nil)
			if status != http.StatusOK {
				t.Fatalf("GET %s: %d\n%s", path, status, snippet(body))
			}
			for _, m := range rowRE.FindAllStringSubmatch(body, -1) {
				got = append(got, m[1])
			}
			path = ""
			if m := nextRE.FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		return got
	}
	sms := ms[slices.IndexFunc(ms, func(m *nudge.Message) bool { return m.Channel == nudge.ChannelSMS })]
	day := sms.CreatedAt.UTC().Format("2006-01-02")
	for _, tt := range []struct {
		name string
		q    url.Values
		keep func(m *nudge.Message) bool
	}{
		{"everything", url.Values{}, func(*nudge.Message) bool { return true }},
		{"email", url.Values{"channel": {"email"}}, func(m *nudge.Message) bool { return m.Channel == nudge.ChannelEmail }},
		{"a journey's step", url.Values{"journey": {sms.JourneyID}, "step": {sms.StepID}},
			func(m *nudge.Message) bool { return m.JourneyID == sms.JourneyID && m.StepID == sms.StepID }},
		{"a status", url.Values{"status": {sms.Status}}, func(m *nudge.Message) bool { return m.Status == sms.Status }},
		{"a day", url.Values{"from": {day}, "to": {day}},
			func(m *nudge.Message) bool { return m.CreatedAt.UTC().Format("2006-01-02") == day }},
		{"all together", url.Values{"channel": {"sms"}, "journey": {sms.JourneyID}, "step": {sms.StepID},
			"status": {sms.Status}, "from": {day}, "to": {day}},
			func(m *nudge.Message) bool {
				return m.Channel == nudge.ChannelSMS && m.JourneyID == sms.JourneyID && m.StepID == sms.StepID &&
					m.Status == sms.Status && m.CreatedAt.UTC().Format("2006-01-02") == day
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := []string{}
			for _, m := range ms {
				if tt.keep(m) {
					want = append(want, m.ID)
				}
			}
			if len(want) == 0 {
				t.Fatal("the seed has no message for this case; the test needs one")
			}
			if got := shown(tt.q); !slices.Equal(got, want) {
				t.Errorf("shown %d messages, want %d (%v… vs %v…)", len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
		})
	}
	t.Run("a cursor that names no message", func(t *testing.T) {
		status, _, body := viewer.do("GET", "/messages?before=no-such-message", nil)
		if status != http.StatusBadRequest || !strings.Contains(body, "no-such-message") {
			t.Errorf("GET /messages?before=no-such-message: %d, want 400 naming the cursor\n%s", status, snippet(body))
		}
	})
}
