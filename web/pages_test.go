package web_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/sim"
)

// allMessages reads the whole outbox of the seed, in id order.
func allMessages(t testing.TB, st nudge.Store) []*nudge.Message {
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

// waitTrue waits until the expression js is true in the page (across
// navigations), or fails the test after ten seconds.
func waitTrue(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			fail(t, ctx, fmt.Errorf("waited 10s for %s (last error %v)", js, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsoleMessages(t *testing.T) {
	b := browser(t)
	c := newConsole(t)
	ms := allMessages(t, c.store)
	// The log shows the newest first.
	slices.SortStableFunc(ms, func(a, b *nudge.Message) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), strings.Compare(b.ID, a.ID))
	})
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
		)
		waitTrue(t, ctx, `location.search.includes("channel=sms") && !!document.getElementById("m-count")`)
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
			next := eval[string](t, ctx, `document.querySelector('a[rel=next]').href`)
			must(t, ctx, chromedp.Click(chromedp.CSS("a[rel=next]")))
			waitTrue(t, ctx, `location.href === `+fmt.Sprintf("%q", next)+` && !!document.getElementById("m-count")`)
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

// signedIn starts a browser and a seeded console and signs in as email.
func signedIn(t *testing.T, email string) (*console, context.Context) {
	t.Helper()
	b := browser(t)
	c := newConsole(t)
	ctx := tab(t, b)
	signIn(t, ctx, c, email)
	return c, ctx
}

func TestConsolePublish(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "examples", "webinar", "journey.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	good := string(src)
	bad := strings.Replace(good, "then: show-time", "then: show-tme", 1)
	badLine := 1 + strings.Count(bad[:strings.Index(bad, "show-tme")], "\n")

	c, ctx := signedIn(t, "admin@example.com")
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

func TestConsoleSimulate(t *testing.T) {
	c, ctx := signedIn(t, "admin@example.com")
	must(t, ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="/simulate"]`)),
		chromedp.WaitVisible(chromedp.CSS("#s-run")),
		chromedp.SetValue(chromedp.CSS("#s-journey"), "published:"+journeyID),
		chromedp.SetValue(chromedp.CSS("#s-data"), "example:webinar"),
		chromedp.Click(chromedp.CSS("#s-run")),
	)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS("#sim-result"))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		fail(t, ctx, fmt.Errorf("no result: %w\n%s", err, body))
	}
	// The same run outside the browser gives the same totals.
	want := simulateExample(t, "webinar")
	for id, n := range map[string]int{"t-decisions": want.Totals.Decisions, "t-email": want.Totals.Messages["email"], "t-sms": want.Totals.Messages["sms"]} {
		if got := eval[string](t, ctx, `document.getElementById('`+id+`').textContent`); got != fmt.Sprint(n) {
			fail(t, ctx, fmt.Errorf("%s shows %s, sim.Run gives %d", id, got, n))
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('details.sim-contact').length`); n != min(len(want.Contacts), 100) {
		fail(t, ctx, fmt.Errorf("%d contacts with decisions listed, want %d", n, len(want.Contacts)))
	}
	if !eval[bool](t, ctx, `!!document.querySelector('#sim-result svg#chart-funnel')`) {
		fail(t, ctx, fmt.Errorf("the result has no funnel chart of the journey's report"))
	}
	if j, _ := c.store.JourneyGet(context.Background(), journeyID); j.Version != 1 {
		t.Fatalf("simulating published something: version %d", j.Version)
	}

	t.Run("a pasted journey with a problem is shown at its line", func(t *testing.T) {
		must(t, ctx,
			chromedp.Navigate(c.url+"/simulate"),
			chromedp.SetValue(chromedp.CSS("#s-journey"), "paste"),
			chromedp.SetValue(chromedp.CSS("#s-yaml"), "id: x\nname: X\ntrigger: {event: a.b}\nsteps:\n  - id: one\n    email: {}\n"),
			chromedp.Click(chromedp.CSS("#s-run")),
			chromedp.WaitVisible(chromedp.CSS(".problems")),
		)
		if n := eval[int](t, ctx, `document.querySelectorAll('ol.numbered li.bad').length`); n == 0 {
			fail(t, ctx, fmt.Errorf("no line is marked with its problem"))
		}
	})
}

// simulateExample runs an example's journey, contacts and timeline through
// sim.Run as the console does (the default policy).
func simulateExample(t *testing.T, name string) *sim.Report {
	t.Helper()
	ex := readExample(t, name)
	r, err := sim.Run(context.Background(), sim.Config{Journeys: []*journey.Journey{ex.journey}, Contacts: bytes.NewReader(ex.contacts), Events: ex.events, Normalizer: exampleRegion})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConsoleSettings(t *testing.T) {
	c, ctx := signedIn(t, "admin@example.com")
	must(t, ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="/settings"]`)),
		chromedp.WaitVisible(chromedp.CSS("#k-name")),
		chromedp.SendKeys(chromedp.CSS("#k-name"), "crm sync"),
		chromedp.SetValue(chromedp.CSS("#k-role"), "ingest"),
		chromedp.Click(chromedp.CSS("#k-create")),
		chromedp.WaitVisible(chromedp.CSS("#new-secret")),
	)
	token := eval[string](t, ctx, `document.getElementById('secret-value').value`)
	id, _, ok := nudge.ParseAPIToken(token)
	if !ok {
		fail(t, ctx, fmt.Errorf("the secret shown, %q, is not an API token", token))
	}
	// The key works against the API, with its role.
	track := func() int {
		req, _ := http.NewRequest("POST", c.url+"/v1/track", strings.NewReader(`{"userId": "w-dev", "event": "page.viewed", "messageId": "settings-test-`+fmt.Sprint(time.Now().UnixNano())+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := track(); got >= 300 {
		fail(t, ctx, fmt.Errorf("the new ingest key: track answered %d", got))
	}
	// Shown once: the settings page does not show it again.
	must(t, ctx, chromedp.Navigate(c.url+"/settings"), chromedp.WaitVisible(chromedp.CSS(`tr[data-key="`+id+`"]`)))
	if eval[bool](t, ctx, `document.body.innerHTML.includes(`+fmt.Sprintf("%q", token)+`)`) {
		fail(t, ctx, fmt.Errorf("the secret is shown again"))
	}
	must(t, ctx, chromedp.Click(chromedp.CSS(`tr[data-key="`+id+`"] button`)))
	waitTrue(t, ctx, `document.querySelector('tr[data-key="`+id+`"] .key-status').textContent.startsWith("revoked")`)
	// The API refuses it now (its key cache may hold it up to 30 s: ask
	// the store, which the cache reads from).
	k, err := c.store.APIKeyGet(context.Background(), id)
	if err != nil || k.RevokedAt == nil {
		t.Fatalf("key %s after revoking: %+v, %v", id, k, err)
	}

	t.Run("a webhook needs an event, and says so", func(t *testing.T) {
		must(t, ctx,
			chromedp.SendKeys(chromedp.CSS("#h-url"), "https://crm.example.com/hook"),
			chromedp.Click(chromedp.CSS("#h-create")),
			chromedp.WaitVisible(chromedp.CSS("#settings-error")),
		)
		if s := eval[string](t, ctx, `document.getElementById('settings-error').textContent`); !strings.Contains(s, "events") {
			fail(t, ctx, fmt.Errorf("error %q does not name the events", s))
		}
		must(t, ctx,
			chromedp.SendKeys(chromedp.CSS("#h-url"), "https://crm.example.com/hook"),
			chromedp.Click(chromedp.CSS("#h-ev-0")),
			chromedp.Click(chromedp.CSS("#h-create")),
			chromedp.WaitVisible(chromedp.CSS("#new-secret")),
		)
		hs, err := c.store.WebhookList(context.Background())
		if err != nil || len(hs) != 1 || hs[0].URL != "https://crm.example.com/hook" {
			t.Fatalf("webhooks after subscribing: %+v, %v", hs, err)
		}
		if got := eval[string](t, ctx, `document.getElementById('secret-value').value`); got != hs[0].Secret {
			fail(t, ctx, fmt.Errorf("the secret shown is not the subscription's"))
		}
	})
}

// TestConsoleWidths opens the main pages at 1280 px and at a phone's
// width (390 px) and checks that none is wider than the screen (wide
// tables, graphs and source scroll inside their own boxes), and that every
// form field has a label.
func TestConsoleWidths(t *testing.T) {
	c, ctx := signedIn(t, "admin@example.com")
	ms := allMessages(t, c.store)
	for _, width := range []int{1280, 390} {
		t.Run(fmt.Sprint(width), func(t *testing.T) { checkWidth(t, ctx, c, width, ms[0].ID) })
	}
}

func checkWidth(t *testing.T, ctx context.Context, c *console, width int, messageID string) {
	must(t, ctx, chromedp.EmulateViewport(int64(width), 844, chromedp.EmulateMobile))
	for _, path := range []string{
		"/", "/journeys/" + journeyID, "/journeys/" + journeyID + "/edit", "/journeys/" + journeyID + "/versions/1",
		"/journeys/new", "/contacts", "/contacts/w-dev", "/messages", "/messages/" + messageID,
		"/simulate", "/policy", "/settings",
	} {
		must(t, ctx, chromedp.Navigate(c.url+path), chromedp.WaitVisible(chromedp.CSS("main h1")))
		// The elements sticking out of the screen, outside any box that scrolls.
		wide := eval[[]string](t, ctx, `(() => {
			const out = [];
			const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) { const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
			for (const el of document.querySelectorAll('body *')) {
				const r = el.getBoundingClientRect();
				if (r.width > 0 && r.right > `+fmt.Sprint(width+1)+` && !scrolls(el)) out.push(el.tagName + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ' right=' + Math.round(r.right));
			}
			return out.slice(0, 5);
		})()`)
		// Every form field has a label a screen reader reads, and every
		// button a name.
		unlabelled := eval[[]string](t, ctx, `[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
			.filter(el => el.tagName === 'BUTTON' ? !(el.textContent.trim() || el.getAttribute('aria-label')) : !(el.labels.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
			.map(el => el.outerHTML.slice(0, 80))`)
		if len(unlabelled) > 0 {
			fail(t, ctx, fmt.Errorf("%s: fields without a label: %v", path, unlabelled))
		}
		// A mobile browser widens its layout to the widest content.
		sw := eval[int](t, ctx, `Math.max(window.innerWidth, document.documentElement.scrollWidth)`)
		if sw > width+1 || len(wide) > 0 {
			fail(t, ctx, fmt.Errorf("%s at %d px: the page is %d px wide; sticking out: %v", path, width, sw, wide))
		}
	}
}

func TestConsolePolicy(t *testing.T) {
	c := newConsole(t)
	src, err := os.ReadFile(filepath.Join("..", "examples", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "timezone: America/Chicago", "timezone: America/Chicgo", 1)
	badLine := 1 + strings.Count(bad[:strings.Index(bad, "Chicgo")], "\n")

	admin := newConsoleClient(t, c.url)
	admin.signIn("admin@example.com")
	status, _, body := admin.do("POST", "/policy", url.Values{"csrf": {admin.csrf}, "source": {bad}})
	if status != http.StatusBadRequest {
		t.Fatalf("a policy with an unknown zone: %d, want 400\n%s", status, snippet(body))
	}
	if !regexp.MustCompile(fmt.Sprintf(`<li id="L%d" class="bad">.*Chicgo`, badLine)).MatchString(body) {
		t.Errorf("line %d is not marked with its problem:\n%s", badLine, body)
	}
	if _, err := c.store.PolicyGet(context.Background(), 0); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Fatalf("a policy with a problem was published (%v)", err)
	}
	status, h, body := admin.do("POST", "/policy", url.Values{"csrf": {admin.csrf}, "source": {string(src)}})
	if status != http.StatusSeeOther || h.Get("Location") != "/policy?version=1" {
		t.Fatalf("publishing the example policy: %d to %q\n%s", status, h.Get("Location"), snippet(body))
	}
	if v, err := c.store.PolicyGet(context.Background(), 0); err != nil || string(v.Source) != string(src) {
		t.Fatalf("the stored policy: %v, %v", v, err)
	}

	// A second version shows what changed from the first.
	v2 := strings.Replace(string(src), "timezone: America/Chicago", "timezone: America/Denver", 1)
	if status, h, _ := admin.do("POST", "/policy", url.Values{"csrf": {admin.csrf}, "source": {v2}}); status != http.StatusSeeOther || h.Get("Location") != "/policy?version=2" {
		t.Fatalf("publishing a second version: %d to %q", status, h.Get("Location"))
	}
	_, _, body = admin.do("GET", "/policy", nil)
	del := regexp.MustCompile(`<tr class="op del">.*?</tr>`).FindAllString(body, -1)
	add := regexp.MustCompile(`<tr class="op add">.*?</tr>`).FindAllString(body, -1)
	if len(del) != 1 || !strings.Contains(del[0], "America/Chicago") || len(add) != 1 || !strings.Contains(add[0], "America/Denver") {
		t.Errorf("the policy's diff removes %q and adds %q; want the one changed line", del, add)
	}

	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	status, _, body = viewer.do("GET", "/policy", nil)
	if status != http.StatusOK || !strings.Contains(body, "America/Denver") || strings.Contains(body, `action="/policy"`) {
		t.Errorf("a viewer's policy page: %d; shows the policy %v; shows the editor %v", status, strings.Contains(body, "America/Denver"), strings.Contains(body, `action="/policy"`))
	}
}

func TestConsoleStepResume(t *testing.T) {
	c := newConsole(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	if _, err := c.store.StepPausePut(ctx, &nudge.StepPause{JourneyID: journeyID, StepID: "text", Reason: "step_paused_opt_out_rate",
		Sent: 40, OptedOut: 4, Rate: 0.1, Threshold: 0.05, MinSends: 20, Since: now.Add(-7 * 24 * time.Hour), PausedAt: now}); err != nil {
		t.Fatal(err)
	}
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	_, _, body := viewer.do("GET", "/journeys/"+journeyID, nil)
	if !strings.Contains(body, "<strong>text</strong> is paused") || strings.Contains(body, "/steps/text/resume") {
		t.Errorf("a viewer sees the pause %v and a resume button %v", strings.Contains(body, "<strong>text</strong> is paused"), strings.Contains(body, "/steps/text/resume"))
	}
	admin := newConsoleClient(t, c.url)
	admin.signIn("admin@example.com")
	if _, _, body := admin.do("GET", "/journeys/"+journeyID, nil); !strings.Contains(body, `action="/journeys/`+journeyID+`/steps/text/resume"`) {
		t.Fatalf("an admin has no resume button:\n%s", snippet(body))
	}
	if status, _, body := admin.do("POST", "/journeys/"+journeyID+"/steps/text/resume", url.Values{"csrf": {admin.csrf}}); status != http.StatusSeeOther {
		t.Fatalf("resume: %d\n%s", status, snippet(body))
	}
	if _, err := c.store.StepPauseActive(ctx, journeyID, "text"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("after resuming, the step's pause: %v, want none", err)
	}
	if _, _, body := admin.do("GET", "/journeys/"+journeyID, nil); strings.Contains(body, "<strong>text</strong> is paused") {
		t.Errorf("after resuming, the page still says the step is paused")
	}
}

func TestConsoleFatigueChart(t *testing.T) {
	c := newConsole(t)
	d, err := c.store.ReportOverview(context.Background(), &nudge.ReportParams{})
	if err != nil || len(d.PerWeek) == 0 {
		t.Fatalf("overview counts: %+v, %v; the seed should have messages", d, err)
	}
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	_, _, body := viewer.do("GET", "/", nil)
	var got, want []string
	for _, m := range regexp.MustCompile(`<text class="value"[^>]*>(\d+) contact-weeks</text>`).FindAllStringSubmatch(body, -1) {
		got = append(got, m[1])
	}
	for _, b := range d.PerWeek {
		want = append(want, fmt.Sprint(b.Contacts))
	}
	if !slices.Equal(got, want) {
		t.Errorf("the fatigue chart writes %v contact-weeks, the store counts %v", got, want)
	}
}

// TestConsoleOnPostgres serves the console on PostgreSQL (when
// NUDGE_TEST_POSTGRES names a server) and reads each main page as a
// browser would, checking the numbers it shows against the store's.
func TestConsoleOnPostgres(t *testing.T) {
	c := newConsoleOn(t, nudgetest.Postgres(t))
	ms := allMessages(t, c.store)
	if len(ms) == 0 {
		t.Fatal("the seed made no messages")
	}
	admin := newConsoleClient(t, c.url)
	admin.signIn("admin@example.com")
	get := func(path string) string {
		t.Helper()
		status, _, body := admin.do("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, status, snippet(body))
		}
		return body
	}
	d, err := c.store.ReportOverview(context.Background(), &nudge.ReportParams{})
	if err != nil {
		t.Fatal(err)
	}
	var entered int64
	for _, j := range d.Journeys {
		if j.JourneyID == journeyID {
			entered = j.Entered
		}
	}
	if body := get("/"); entered == 0 || !strings.Contains(body, fmt.Sprintf(`<td class="num entered">%d</td>`, entered)) {
		t.Errorf("the overview does not show %d entered", entered)
	}
	if body := get("/journeys/" + journeyID + "?from=2000-01-01"); !strings.Contains(body, `data-step="confirm" data-reached="`+fmt.Sprint(entered)+`"`) {
		t.Errorf("the graph's first step does not show %d reached", entered)
	}
	body := get("/messages?channel=sms")
	var sms int
	for _, m := range ms {
		if m.Channel == nudge.ChannelSMS {
			sms++
			if !strings.Contains(body, `data-message="`+m.ID+`"`) {
				t.Errorf("the SMS log lacks message %s", m.ID)
			}
		}
	}
	if n := strings.Count(body, `<li class="msg `); n != sms {
		t.Errorf("the SMS log shows %d messages, the store has %d SMS", n, sms)
	}
	if body := get("/messages/" + ms[0].ID); !strings.Contains(body, "Sent ") {
		t.Errorf("message %s does not say why it was sent", ms[0].ID)
	}
	get("/contacts/w-dev")
	get("/policy")
	get("/settings")
}

// TestConsoleSimulateUpload sends a journey's contacts and timeline as
// files, as the simulate form does, and a form too large for the bound.
func TestConsoleSimulateUpload(t *testing.T) {
	c := newConsole(t)
	editor := newConsoleClient(t, c.url)
	editor.signIn("admin@example.com")
	ex := readExample(t, "webinar")
	timeline, err := os.ReadFile(filepath.Join("..", "examples", "webinar", "timeline.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(files map[string][]byte, fields ...string) (int, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range map[string]string{"csrf": editor.csrf, "journey": "paste", "yaml": string(ex.src), "data": "upload"} {
			mw.WriteField(k, v)
		}
		for i := 0; i+1 < len(fields); i += 2 {
			mw.WriteField(fields[i], fields[i+1])
		}
		for name, b := range files {
			fw, _ := mw.CreateFormFile(name, name+".txt")
			fw.Write(b)
		}
		mw.Close()
		req, _ := http.NewRequest("POST", c.url+"/simulate", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		res, err := editor.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	status, body := post(map[string][]byte{"contacts": ex.contacts, "timeline": timeline})
	if status != http.StatusOK {
		t.Fatalf("simulate with uploads: %d\n%s", status, snippet(body))
	}
	want := simulateExample(t, "webinar")
	if !strings.Contains(body, fmt.Sprintf(`<strong id="t-decisions">%d</strong>`, want.Totals.Decisions)) {
		t.Errorf("the uploaded run does not show %d decisions as sim.Run does", want.Totals.Decisions)
	}

	// A window that ends before the webinar's last events leaves them out.
	files := map[string][]byte{"contacts": ex.contacts, "timeline": timeline}
	status, body = post(files, "from", "2026-03-02", "to", "2026-03-04")
	outside := 0
	for _, e := range ex.events {
		if !e.At().Before(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)) {
			outside++
		}
	}
	if status != http.StatusOK || outside == 0 || !strings.Contains(body, fmt.Sprintf("(%d outside the window, left out)", outside)) {
		t.Errorf("simulating 2 to 4 March: %d; want %d events left out\n%s", status, outside, snippet(body))
	}
	if status, body = post(files, "from", "2026-03-04", "to", "2026-03-02"); status != http.StatusBadRequest || !strings.Contains(body, "before from") {
		t.Errorf("a window ending before it starts: %d\n%s", status, snippet(body))
	}

	status, body = post(map[string][]byte{"contacts": ex.contacts})
	if status != http.StatusBadRequest || !strings.Contains(body, "Upload a timeline") {
		t.Errorf("without a timeline: %d\n%s", status, snippet(body))
	}
	status, body = post(map[string][]byte{"timeline": []byte("{\"type\": \"track\"}\n")})
	if status != http.StatusBadRequest || !strings.Contains(body, "timeline.jsonl:1:") {
		t.Errorf("a bad timeline line: %d, want 400 naming the line\n%s", status, snippet(body))
	}
	status, body = post(map[string][]byte{"contacts": bytes.Repeat([]byte("x"), 5<<20), "timeline": timeline})
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "4 MB") {
		t.Errorf("a 5 MB upload: %d, want 413 saying the bound\n%s", status, snippet(body))
	}
}

func TestConsoleNewJourney(t *testing.T) {
	c := newConsole(t)
	editor := newConsoleClient(t, c.url)
	editor.signIn("admin@example.com")
	ex := readExample(t, "webinar")
	status, _, body := editor.do("POST", "/journeys/new", url.Values{"csrf": {editor.csrf}, "source": {string(ex.src)}})
	idLine := 1 + strings.Count(string(ex.src[:bytes.Index(ex.src, []byte("\nid: "))+1]), "\n")
	if status != http.StatusBadRequest || !regexp.MustCompile(fmt.Sprintf(`<li id="L%d" class="bad">.*exists`, idLine)).MatchString(body) {
		t.Fatalf("a new journey with an existing id: %d, want 400 with line %d marked\n%s", status, idLine, snippet(body))
	}
	src := strings.Replace(string(ex.src), "id: "+journeyID, "id: webinar-copy", 1)
	status, h, body := editor.do("POST", "/journeys/new", url.Values{"csrf": {editor.csrf}, "source": {src}})
	if status != http.StatusSeeOther || h.Get("Location") != "/journeys/webinar-copy" {
		t.Fatalf("a new journey: %d to %q\n%s", status, h.Get("Location"), snippet(body))
	}
	if j, err := c.store.JourneyGet(context.Background(), "webinar-copy"); err != nil || j.Version != 1 || j.Status != nudge.JourneyActive {
		t.Errorf("the new journey: %+v, %v", j, err)
	}
}

// TestConsoleSimulateThenPublish simulates a pasted journey, then publishes
// it from the result with the form the page offers.
func TestConsoleSimulateThenPublish(t *testing.T) {
	c, ctx := signedIn(t, "admin@example.com")
	src := strings.Replace(string(readExample(t, "webinar").src), "id: "+journeyID, "id: webinar-two", 1)
	must(t, ctx,
		chromedp.Navigate(c.url+"/simulate"),
		chromedp.SetValue(chromedp.CSS("#s-journey"), "paste"),
		chromedp.SetValue(chromedp.CSS("#s-yaml"), src),
		chromedp.SetValue(chromedp.CSS("#s-data"), "example:webinar"),
		chromedp.Click(chromedp.CSS("#s-run")),
		chromedp.WaitVisible(chromedp.CSS("#s-publish")),
	)
	if _, err := c.store.JourneyGet(context.Background(), "webinar-two"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Fatalf("simulating published the journey (%v)", err)
	}
	must(t, ctx, chromedp.Click(chromedp.CSS("#s-publish")))
	waitTrue(t, ctx, `location.pathname === "/journeys/webinar-two" && !!document.querySelector("svg.graph")`)
	if j, err := c.store.JourneyGet(context.Background(), "webinar-two"); err != nil || j.Version != 1 {
		t.Errorf("after publishing from the simulation: %+v, %v", j, err)
	}
}

func TestConsoleWebhookLog(t *testing.T) {
	c := newConsole(t)
	ctx := context.Background()
	sub := &nudge.WebhookSubscription{ID: "wh_test", URL: "https://crm.example.com/hook", Events: []string{nudge.WebhookMessageSent}, Secret: "whsec_0123456789abcdef", CreatedAt: time.Now()}
	if err := c.store.WebhookCreate(ctx, sub); err != nil {
		t.Fatal(err)
	}
	var ds []*nudge.WebhookDelivery
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		ds = append(ds, &nudge.WebhookDelivery{SubscriptionID: sub.ID, EventID: fmt.Sprintf("ev-%02d", i), Event: nudge.WebhookMessageSent, Attempt: 1, StatusCode: 200, OK: i%2 == 0, At: at.Add(time.Duration(i) * time.Minute)})
	}
	if err := c.store.WebhookDeliveryLog(ctx, ds); err != nil {
		t.Fatal(err)
	}
	admin := newConsoleClient(t, c.url)
	admin.signIn("admin@example.com")
	if _, _, body := admin.do("GET", "/settings", nil); strings.Contains(body, sub.Secret) || !strings.Contains(body, `href="/settings/webhooks/wh_test"`) {
		t.Errorf("settings shows the secret %v; links the delivery log %v", strings.Contains(body, sub.Secret), strings.Contains(body, `href="/settings/webhooks/wh_test"`))
	}
	events := regexp.MustCompile(`<code>(ev-\d+)</code>`)
	var seen []string
	path := "/settings/webhooks/wh_test"
	for page := 0; page < 3 && path != ""; page++ {
		status, _, body := admin.do("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, status)
		}
		for _, m := range events.FindAllStringSubmatch(body, -1) {
			seen = append(seen, m[1])
		}
		path = ""
		if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
	}
	if len(seen) != 60 || seen[0] != "ev-59" || seen[59] != "ev-00" {
		t.Errorf("the log's pages show %d deliveries from %v; want all 60, newest first", len(seen), seen[:min(len(seen), 3)])
	}
}

func TestConsoleContactFilter(t *testing.T) {
	c := newConsole(t)
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	entry := regexp.MustCompile(`<li class="entry kind-(\w+)[^"]*?(?: channel-(\w+))?">`)
	count := func(path string) map[string]int {
		status, _, body := viewer.do("GET", path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, status)
		}
		n := map[string]int{}
		for _, m := range entry.FindAllStringSubmatch(body, -1) {
			n[m[2]]++
		}
		return n
	}
	all, sms := count("/contacts/w-dev"), count("/contacts/w-dev?channel=sms")
	if all["sms"] == 0 || all["email"] == 0 {
		t.Fatalf("w-dev's timeline has %v entries by channel; the test wants email and SMS", all)
	}
	if len(sms) != 1 || sms["sms"] != all["sms"] {
		t.Errorf("filtered by sms: %v, want only the %d SMS entries", sms, all["sms"])
	}
}

// TestConsoleMessageWhy: a text first deferred for quiet hours, then sent,
// shows both decisions as its why, in order, and nothing of other steps.
func TestConsoleMessageWhy(t *testing.T) {
	c := newConsole(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 9, 3, 0, 0, 0, time.UTC)
	t1 := time.Date(2026, 3, 9, 14, 0, 0, 0, time.UTC)
	e := &nudge.Enrollment{ID: "e-why", JourneyID: journeyID, Version: 1, ContactID: "w-dev", State: nudge.EnrollmentWaiting, StepID: "text", WakeAt: t1, EnteredAt: t0}
	at := func(d *nudge.Decision, when time.Time) *nudge.Decision { d.At = when; return d }
	ds := []*nudge.Decision{
		at(&nudge.Decision{ContactID: "w-dev", JourneyID: journeyID, Version: 1, EnrollmentID: "e-why", StepID: "joined-yet", Outcome: nudge.OutcomeBranched, Reason: "branch_else", Message: "Took the else branch."}, t0),
		at(&nudge.Decision{ContactID: "w-dev", JourneyID: journeyID, Version: 1, EnrollmentID: "e-why", StepID: "text", Channel: "sms", Outcome: nudge.OutcomeDeferred, Reason: "quiet_hours", Message: "Deferred to 08:00 America/Chicago: quiet hours; zone from phone."}, t0),
		at(&nudge.Decision{ContactID: "w-dev", JourneyID: journeyID, Version: 1, EnrollmentID: "e-why", StepID: "text", Channel: "sms", Outcome: nudge.OutcomeSent, Reason: "queued", Message: "Sent SMS 'webinar-sms' (step text).", Details: map[string]any{"message_id": "m-why"}}, t1),
	}
	m := &nudge.Message{ID: "m-why", EnrollmentID: "e-why", ContactID: "w-dev", JourneyID: journeyID, Version: 1, StepID: "text", Channel: nudge.ChannelSMS,
		Template: "webinar-sms", Status: nudge.MessageQueued, IdempotencyKey: "e-why:text", AvailableAt: t1, CreatedAt: t1, UpdatedAt: t1}
	if err := c.store.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}, Decisions: ds[:2]}, t0); err != nil {
		t.Fatal(err)
	}
	e2 := *e
	if err := c.store.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{&e2}, Decisions: ds[2:], Messages: []*nudge.Message{m}}, t1); err != nil {
		t.Fatal(err)
	}
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	status, _, body := viewer.do("GET", "/messages/m-why", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /messages/m-why: %d\n%s", status, snippet(body))
	}
	why := regexp.MustCompile(`(?s)<ol class="why">(.*?)</ol>`).FindStringSubmatch(body)
	if why == nil {
		t.Fatalf("no why on the page:\n%s", body)
	}
	var got []string
	for _, m := range regexp.MustCompile(`<span class="tag">(\w+)</span> ([^<]+) <small>`).FindAllStringSubmatch(why[1], -1) {
		got = append(got, m[1]+": "+html.UnescapeString(m[2]))
	}
	want := []string{"deferred: Deferred to 08:00 America/Chicago: quiet hours; zone from phone.", "sent: Sent SMS 'webinar-sms' (step text)."}
	if !slices.Equal(got, want) {
		t.Errorf("why %q, want %q", got, want)
	}
}

// TestConsoleJourneyVersion counts one version's enrollments and draws
// that version.
func TestConsoleJourneyVersion(t *testing.T) {
	c := newConsole(t)
	ex := readExample(t, "webinar")
	v2 := []byte(strings.Replace(string(ex.src), "then: show-time", "then: text", 1))
	j2, err := journey.Parse("journey.yaml", v2, journey.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.store.JourneyPublish(context.Background(), &nudge.JourneyPublishParams{ID: j2.ID, Name: j2.Name, Source: v2, Hash: j2.Hash()}, time.Now()); err != nil {
		t.Fatal(err)
	}
	viewer := newConsoleClient(t, c.url)
	viewer.signIn("viewer@example.com")
	reached := regexp.MustCompile(`data-step="confirm" data-reached="(\d+)"`)
	get := func(path string) (int, string) {
		status, _, body := viewer.do("GET", path, nil)
		m := reached.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("GET %s: %d, no graph\n%s", path, status, snippet(body))
		}
		return status, m[1]
	}
	_, all := get("/journeys/" + journeyID)
	if _, n := get("/journeys/" + journeyID + "?version=1"); n != all || n == "0" {
		t.Errorf("version 1 shows %s reached, every version %s; all entered version 1", n, all)
	}
	if _, n := get("/journeys/" + journeyID + "?version=2"); n != "0" {
		t.Errorf("version 2 shows %s reached; nobody entered it", n)
	}
	if status, _ := get("/journeys/" + journeyID + "?version=9"); status != http.StatusBadRequest {
		t.Errorf("version 9: %d, want 400", status)
	}
	_, _, body := viewer.do("GET", "/journeys/"+journeyID+"?version=1", nil)
	if !strings.Contains(body, "Source (version 1)") || !strings.Contains(body, "then: show-time") {
		t.Errorf("version 1's page does not show version 1's source")
	}
}
