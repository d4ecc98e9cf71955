package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/nudge/nudge"
)

// allMessages reads the whole outbox of the seed, in id order.
func allMessages(t *testing.T, st nudge.Store) []*nudge.Message {
	t.Helper()
	var out []*nudge.Message
	p := &nudge.MessageListParams{Limit: 10000}
	for {
		ms, err := st.MessageList(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ms...)
		if len(ms) < p.Limit {
			return out
		}
		p.AfterID = ms[len(ms)-1].ID
	}
}

func TestConsoleMessages(t *testing.T) {
	b := browser(t)
	c := newConsole(t)
	ms := allMessages(t, c.store)
	var sms []string
	for _, m := range ms {
		if m.Channel == nudge.ChannelSMS {
			sms = append(sms, m.ID)
		}
	}
	if len(sms) == 0 || len(sms) >= len(ms) {
		t.Fatalf("the seed has %d SMS among %d messages; the test wants some of each", len(sms), len(ms))
	}

	t.Run("search by channel shows the SMS with their history and why", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		must(t, ctx,
			chromedp.Click(chromedp.CSS(`nav a[href="/messages"]`)),
			chromedp.WaitVisible(chromedp.CSS("#m-channel")),
			chromedp.SetValue(chromedp.CSS("#m-channel"), "sms"),
			chromedp.Click(chromedp.CSS("#m-search")),
			chromedp.WaitVisible(chromedp.CSS("#m-count")),
		)
		if loc := eval[string](t, ctx, `location.search`); !strings.Contains(loc, "channel=sms") {
			fail(t, ctx, fmt.Errorf("after searching, the address is %q", loc))
		}
		got := eval[[]string](t, ctx, `[...document.querySelectorAll('li.msg')].map(li => li.dataset.message)`)
		want := sms[:min(len(sms), 50)]
		if !slices.Equal(got, want) {
			fail(t, ctx, fmt.Errorf("the log shows %v, want the SMS %v", got, want))
		}
		// Each shows the sentence of the decision that sent it, and its
		// status history when opened.
		for _, id := range got {
			row := `document.querySelector('li.msg[data-message="` + id + `"]')`
			if s := eval[string](t, ctx, row+`.querySelector('.why-sentence').textContent.trim()`); !strings.HasPrefix(s, "Sent SMS") {
				fail(t, ctx, fmt.Errorf("message %s: why %q, want the sentence of its send", id, s))
			}
			hist, err := c.store.MessageHistory(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			must(t, ctx, chromedp.Click(chromedp.CSS(`li.msg[data-message="`+id+`"] summary`)))
			if n := eval[int](t, ctx, row+`.querySelectorAll('ol.history li').length`); n != max(len(hist), 1) {
				fail(t, ctx, fmt.Errorf("message %s: %d history lines, the store has %d", id, n, len(hist)))
			}
		}
	})

	t.Run("a bad date is refused with a sentence saying what", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		must(t, ctx, chromedp.Navigate(c.url+"/messages?from=yesterday"), chromedp.WaitVisible(chromedp.CSS("p.error")))
		if s := eval[string](t, ctx, `document.querySelector('p.error').textContent`); !strings.Contains(s, "from") || !strings.Contains(s, "YYYY-MM-DD") {
			fail(t, ctx, fmt.Errorf("error %q does not name the field and the format", s))
		}
	})

	t.Run("pages follow on without repeating or skipping", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		must(t, ctx, chromedp.Navigate(c.url+"/messages"), chromedp.WaitVisible(chromedp.CSS("#m-count")))
		var seen []string
		for page := 0; ; page++ {
			seen = append(seen, eval[[]string](t, ctx, `[...document.querySelectorAll('li.msg')].map(li => li.dataset.message)`)...)
			if !eval[bool](t, ctx, `!!document.querySelector('a[rel=next]')`) {
				break
			}
			if page > len(ms)/50+1 {
				fail(t, ctx, fmt.Errorf("more pages than messages"))
			}
			must(t, ctx, chromedp.Click(chromedp.CSS("a[rel=next]")), chromedp.WaitVisible(chromedp.CSS("#m-count")))
		}
		var want []string
		for _, m := range ms {
			want = append(want, m.ID)
		}
		if !slices.Equal(seen, want) {
			fail(t, ctx, fmt.Errorf("paging showed %d messages, the outbox has %d (or another order)", len(seen), len(want)))
		}
	})
}

func TestConsolePublish(t *testing.T) {
	b := browser(t)
	c := newConsole(t)
	src, err := os.ReadFile(filepath.Join("..", "examples", "webinar", "journey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	good := string(src)
	bad := strings.Replace(good, "then: show-time", "then: show-tme", 1)
	badLine := 1 + strings.Count(bad[:strings.Index(bad, "show-tme")], "\n")

	ctx := tab(t, b)
	signIn(t, ctx, c, "admin@example.com")
	must(t, ctx,
		chromedp.Navigate(c.url+"/journeys/"+journeyID),
		chromedp.Click(chromedp.CSS("#edit")),
		chromedp.WaitVisible(chromedp.CSS("#source")),
		chromedp.SetValue(chromedp.CSS("#source"), bad),
		chromedp.Click(chromedp.CSS("#publish")),
		chromedp.WaitVisible(chromedp.CSS(".problems")),
	)
	bads := eval[[]string](t, ctx, `[...document.querySelectorAll('ol.numbered li.bad')].map(li => li.id)`)
	if !slices.Equal(bads, []string{fmt.Sprintf("L%d", badLine)}) {
		fail(t, ctx, fmt.Errorf("lines marked bad %v, want L%d (the line naming show-tme)", bads, badLine))
	}
	if s := eval[string](t, ctx, `document.querySelector('li.bad .line-problem').textContent`); !strings.Contains(s, "show-tme") {
		fail(t, ctx, fmt.Errorf("the problem at the line says %q, not the step it cannot find", s))
	}
	if got := eval[string](t, ctx, `document.querySelector('#source').value`); got != bad {
		fail(t, ctx, fmt.Errorf("the editor lost the text sent"))
	}
	if j, _ := c.store.JourneyGet(context.Background(), journeyID); j.Version != 1 {
		t.Fatalf("a file with a problem was published: version %d", j.Version)
	}

	fixed := strings.Replace(good, "then: show-time", "then: text", 1)
	must(t, ctx,
		chromedp.SetValue(chromedp.CSS("#source"), fixed),
		chromedp.Click(chromedp.CSS("#publish")),
		chromedp.WaitVisible(chromedp.CSS("#diff")),
	)
	j, err := c.store.JourneyGet(context.Background(), journeyID)
	if err != nil || j.Version != 2 {
		t.Fatalf("after publishing: %+v, %v; want version 2", j, err)
	}
	del := eval[[]string](t, ctx, `[...document.querySelectorAll('table.diff tr.del')].map(tr => tr.textContent)`)
	add := eval[[]string](t, ctx, `[...document.querySelectorAll('table.diff tr.add')].map(tr => tr.textContent)`)
	if len(del) != 1 || !strings.Contains(del[0], "then: show-time") || len(add) != 1 || !strings.Contains(add[0], "then: text") {
		fail(t, ctx, fmt.Errorf("diff removed %q and added %q; want the one changed line", del, add))
	}
}
