package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/sim"
	"github.com/nudge/nudge/store/sqlite"
	"github.com/nudge/nudge/web"
)

const journeyID = "webinar-reminder"

// console is a seeded server and what the tests need to check it.
type console struct {
	url    string
	store  nudge.Store
	apiKey string
}

// example is an example's journey, contacts and timeline, read.
type example struct {
	src      []byte
	journey  *journey.Journey
	contacts []byte
	events   []*sim.Event
}

// readExample reads examples/NAME.
func readExample(t testing.TB, name string) *example {
	t.Helper()
	dir := filepath.Join("..", "examples", name)
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ex := &example{src: read("journey.yaml"), contacts: read("contacts.csv")}
	var err error
	if ex.journey, err = journey.Parse("journey.yaml", ex.src, journey.Options{}); err != nil {
		t.Fatal(err)
	}
	if ex.events, err = sim.ReadTimeline("timeline.jsonl", bytes.NewReader(read("timeline.jsonl")), exampleRegion); err != nil {
		t.Fatal(err)
	}
	return ex
}

var exampleRegion = &ingest.ContactNormalizer{DefaultRegion: "US"}

// seed runs the webinar example through the real engine on a fake clock:
// its contacts imported, its journey published, its timeline replayed.
func seed(t testing.TB, ctx context.Context, db nudge.Store) *nudgetest.Clock {
	t.Helper()
	return seedWith(t, ctx, db, readExample(t, "webinar"))
}

// seedWith runs an example through the real engine on a fake clock.
func seedWith(t testing.TB, ctx context.Context, db nudge.Store, ex *example) *nudgetest.Clock {
	t.Helper()
	events := ex.events
	start := events[0].At().Add(-time.Minute)
	clock := nudgetest.NewClock(start)
	eng, err := engine.New(engine.Config{Store: db, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := ingest.NewCSVReader(bytes.NewReader(ex.contacts), nil, exampleRegion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Import(ctx, db, cr, ingest.ImportOptions{Now: clock.Now}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	j := ex.journey
	if _, _, err := db.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: j.ID, Name: j.Name, Source: ex.src, Hash: j.Hash()}, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	end := events[len(events)-1].At().Add(24 * time.Hour)
	for now := start; !now.After(end); now = now.Add(10 * time.Minute) {
		clock.Set(now)
		var batch []nudge.IngestItem
		for len(events) > 0 && !events[0].At().After(now) {
			batch = append(batch, events[0].Item)
			events = events[1:]
		}
		if len(batch) > 0 {
			if _, err := db.EventIngest(ctx, batch, now); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := eng.RunOnce(ctx); err != nil {
			t.Fatalf("engine at %s: %v", now, err)
		}
	}
	return clock
}

// newConsole serves the API and the console as nudge serve does.
func newConsole(t testing.TB) *console {
	t.Helper()
	return newConsoleOn(t, nudgetest.SQLite(t))
}

// newConsoleOn is newConsole on the store db.
func newConsoleOn(t testing.TB, db nudge.Store) *console {
	t.Helper()
	return newConsoleWith(t, db, readExample(t, "webinar"))
}

// newConsoleWith is newConsole on the store db, seeded with ex.
func newConsoleWith(t testing.TB, db nudge.Store, ex *example) *console {
	t.Helper()
	ctx := context.Background()
	clock := seedWith(t, ctx, db, ex)
	users := db
	for _, u := range []struct{ id, email, role string }{
		{"u-admin", "admin@example.com", nudge.UserAdmin},
		{"u-viewer", "viewer@example.com", nudge.UserViewer},
	} {
		h, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := users.UserCreate(ctx, &nudge.User{ID: u.id, Email: u.email, Role: u.role, PasswordHash: h, CreatedAt: clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := api.New(api.Config{Store: db, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	w, err := web.New(web.Config{Store: db, Clock: clock, Examples: os.DirFS(filepath.Join("..", "examples")),
		OpenStore: func(ctx context.Context, path string) (nudge.Store, error) {
			db, err := sqlite.Open(path)
			if err != nil {
				return nil, err
			}
			return db, db.Migrate(ctx)
		},
		Providers: []web.Provider{{Channel: nudge.ChannelSMS, Name: "Twilio", Configured: true, Detail: "account AC123"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.Combine(a.Handler(), w.Handler()))
	t.Cleanup(srv.Close)
	k, token := nudge.NewAPIKey(nudge.RoleRead, "test", clock.Now())
	if err := db.APIKeyCreate(ctx, k); err != nil {
		t.Fatal(err)
	}
	return &console{url: srv.URL, store: db, apiKey: token}
}

// browser starts headless Chromium, or skips the test where there is none.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := "/usr/bin/chromium"
	if _, err := os.Stat(path); err != nil {
		if path, err = exec.LookPath("chromium"); err != nil {
			t.Skip("chromium not found; .ci/run installs it (apt-get install chromium)")
		}
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab opens a fresh browser context (its own cookies) for one user. Its
// deadline only stops a hung test: TestConsoleWidths loads 24 pages in
// one tab, which took 46 s on a 2-core machine at load average 24.
func tab(t *testing.T, b context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel2)
	return ctx
}

// must runs actions and, on failure, saves a screenshot and fails the test.
func must(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		fail(t, ctx, err)
	}
}

func fail(t *testing.T, ctx context.Context, err error) {
	t.Helper()
	name := filepath.Join(t.TempDir(), strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+".png")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if png, serr := chromedp.Run(sctx, chromedp.FullScreenshot(100)); serr == nil {
		if os.WriteFile(name, png, 0o644) == nil {
			t.Logf("screenshot: %s", name)
		}
	}
	t.Fatal(err)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		fail(t, ctx, fmt.Errorf("%s: %w", js, err))
	}
	return v
}

func signIn(t *testing.T, ctx context.Context, c *console, email string) {
	t.Helper()
	must(t, ctx,
		chromedp.Navigate(c.url+"/"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), "correct horse"),
		chromedp.Click(chromedp.CSS("form.login button")),
	)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS("table.journeys"))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		fail(t, ctx, fmt.Errorf("after signing in as %s: %w; page:\n%s", email, err, body))
	}
}

func TestConsole(t *testing.T) {
	b := browser(t)
	c := newConsole(t)

	t.Run("sign in refused with a wrong password", func(t *testing.T) {
		ctx := tab(t, b)
		must(t, ctx,
			chromedp.Navigate(c.url+"/login"),
			chromedp.SendKeys(chromedp.CSS("#email"), "admin@example.com"),
			chromedp.SendKeys(chromedp.CSS("#password"), "wrong"),
			chromedp.Click(chromedp.CSS("form.login button")),
			chromedp.WaitVisible(chromedp.CSS("p.error")),
		)
	})

	t.Run("overview lists the journey with the report's entered count", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "admin@example.com")
		req, _ := http.NewRequest("GET", c.url+"/v1/reports/overview", nil)
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var ov struct {
			Journeys []struct {
				JourneyID string `json:"journey_id"`
				Entered   int64  `json:"entered"`
			} `json:"journeys"`
		}
		if err := json.NewDecoder(res.Body).Decode(&ov); err != nil {
			t.Fatal(err)
		}
		var want int64 = -1
		for _, j := range ov.Journeys {
			if j.JourneyID == journeyID {
				want = j.Entered
			}
		}
		if want <= 0 {
			t.Fatalf("report API: journey %s entered %d; the seed should have entered contacts", journeyID, want)
		}
		got := eval[string](t, ctx, `document.querySelector('tr[data-journey="`+journeyID+`"] td.entered').textContent.trim()`)
		if got != fmt.Sprint(want) {
			fail(t, ctx, fmt.Errorf("overview shows entered %q, report API says %d", got, want))
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('svg.chart rect.bar title').length`); n == 0 {
			fail(t, ctx, fmt.Errorf("the chart has no bars with titles"))
		}
	})

	t.Run("journey page draws a node per step", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		must(t, ctx, chromedp.Navigate(c.url+"/journeys/"+journeyID), chromedp.WaitVisible(chromedp.CSS("svg.graph")))
		v, err := c.store.JourneyVersionGet(context.Background(), journeyID, 1)
		if err != nil {
			t.Fatal(err)
		}
		j, err := journey.Parse("journey.yaml", v.Source, journey.Options{})
		if err != nil {
			t.Fatal(err)
		}
		steps := eval[[]string](t, ctx, `[...document.querySelectorAll('svg.graph g.node[data-step]:not(.end)')].map(n => n.dataset.step)`)
		var want []string
		for _, s := range j.Steps {
			want = append(want, s.ID)
		}
		slices.Sort(steps)
		slices.Sort(want)
		if !slices.Equal(steps, want) {
			fail(t, ctx, fmt.Errorf("graph nodes %v, want one per step %v", steps, want))
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('svg.graph g.node.kind-sms').length`); n != 1 {
			fail(t, ctx, fmt.Errorf("%d SMS nodes, want 1", n))
		}
		if eval[string](t, ctx, `document.querySelector('svg.graph g.node[data-step="confirm"]').dataset.reached`) == "0" {
			fail(t, ctx, fmt.Errorf("the first step shows no enrollments"))
		}
		if eval[bool](t, ctx, `!!document.querySelector('#pause, #resume')`) {
			fail(t, ctx, fmt.Errorf("a viewer sees a pause or resume button"))
		}
		// A forged POST with the viewer's own CSRF token is still refused.
		status := eval[int](t, ctx, `fetch('/journeys/`+journeyID+`/pause', {method: 'POST', body: new URLSearchParams({csrf: document.querySelector('form.signout input[name=csrf]').value})}).then(r => r.status)`)
		if status != http.StatusForbidden {
			fail(t, ctx, fmt.Errorf("viewer's pause: status %d, want 403", status))
		}
	})

	t.Run("contact page shows a decision sentence", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		ds, err := c.store.DecisionList(context.Background(), &nudge.DecisionListParams{ContactID: "w-dev", Limit: 100})
		if err != nil || len(ds) == 0 {
			t.Fatalf("decisions of w-dev: %d, %v", len(ds), err)
		}
		must(t, ctx,
			chromedp.SendKeys(chromedp.CSS("#top-q"), "dev@example.com\n"),
			chromedp.WaitVisible(chromedp.CSS("ol.timeline")),
		)
		text := eval[string](t, ctx, `document.querySelector('ol.timeline').textContent`)
		for _, d := range ds {
			if !strings.Contains(text, d.Message) {
				fail(t, ctx, fmt.Errorf("timeline lacks the sentence %q", d.Message))
			}
		}
	})

	t.Run("admin pauses the journey and it persists", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "admin@example.com")
		// A POST without the CSRF token is refused.
		if status := eval[int](t, ctx, `fetch('/journeys/`+journeyID+`/pause', {method: 'POST'}).then(r => r.status)`); status != http.StatusForbidden {
			fail(t, ctx, fmt.Errorf("pause without CSRF token: status %d, want 403", status))
		}
		if j, _ := c.store.JourneyGet(context.Background(), journeyID); j.Status != nudge.JourneyActive {
			t.Fatalf("status %s after a refused pause", j.Status)
		}
		must(t, ctx,
			chromedp.Navigate(c.url+"/journeys/"+journeyID),
			chromedp.Click(chromedp.CSS("#pause")),
			chromedp.WaitVisible(chromedp.CSS("#resume")),
		)
		j, err := c.store.JourneyGet(context.Background(), journeyID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != nudge.JourneyPaused {
			fail(t, ctx, fmt.Errorf("status %s after pause, want paused", j.Status))
		}
		must(t, ctx, chromedp.Click(chromedp.CSS("#resume")), chromedp.WaitVisible(chromedp.CSS("#pause")))
	})

	t.Run("sign out", func(t *testing.T) {
		ctx := tab(t, b)
		signIn(t, ctx, c, "viewer@example.com")
		must(t, ctx,
			chromedp.Click(chromedp.CSS("form.signout button")),
			chromedp.WaitVisible(chromedp.CSS("#email")),
			chromedp.Navigate(c.url+"/"),
			chromedp.WaitVisible(chromedp.CSS("#email")),
		)
	})
}
