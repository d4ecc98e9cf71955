package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
)

// clickJourney sends an email and waits for a click on it.
const clickJourney = `id: click
trigger: {event: go}
steps:
  - id: email
    email: {template: hello}
  - id: clicked
    wait_for: {event: email.clicked, timeout: 2d, on_event: done, on_timeout: done}
  - id: done
    exit: {}
`

const browserUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"

// linkEnv is an API with a contact "c1" (ann@example.com) and its links.
type linkEnv struct {
	*env
	ctx context.Context
}

func newLinkEnv(t *testing.T, open opener) *linkEnv {
	t.Helper()
	e := &linkEnv{env: newEnv(t, open), ctx: context.Background()}
	if _, err := e.store.ContactMerge(e.ctx, []*nudge.ContactPatch{{ID: "c1", Email: ptrTo("ann@example.com")}}, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	return e
}

func ptrTo[T any](v T) *T { return &v }

func (e *linkEnv) mustLinks(ls ...*nudge.Link) {
	e.t.Helper()
	if err := e.store.LinkCreate(e.ctx, ls); err != nil {
		e.t.Fatal(err)
	}
}

// hit sends a request without following redirects.
func (e *linkEnv) hit(method, path, ua, contentType, body string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := *e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *linkEnv) events(name string) []*nudge.Event {
	e.t.Helper()
	p, err := e.store.EventList(e.ctx, &nudge.EventListParams{ContactID: "c1", Name: name, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Events
}

func TestClick(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newLinkEnv(t, open)
		// A journey waits for the click: publish it, enter the contact and
		// let the engine send the email.
		sum := sha256.Sum256([]byte(clickJourney))
		if _, _, err := e.store.JourneyPublish(e.ctx, &nudge.JourneyPublishParams{ID: "click", Name: "click",
			Source: []byte(clickJourney), Hash: hex.EncodeToString(sum[:])}, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		if _, err := e.store.EventIngest(e.ctx, []nudge.IngestItem{{Event: &nudge.Event{MessageID: "go-1", Type: nudge.EventTrack,
			ContactID: "c1", Name: "go", Timestamp: now, ReceivedAt: now}}}, now); err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Config{Store: e.store, Clock: e.clock})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		ms, err := e.store.MessageList(e.ctx, &nudge.MessageListParams{ContactID: "c1"})
		if err != nil || len(ms) != 1 {
			t.Fatalf("messages %v, %v; want the journey's email", ms, err)
		}
		m := ms[0]
		l := &nudge.Link{Code: "Abc123Def45", URL: "https://x.io/a?b=1", MessageID: m.ID, ContactID: "c1",
			JourneyID: m.JourneyID, StepID: m.StepID, Channel: nudge.ChannelEmail, CreatedAt: now}
		e.mustLinks(l)

		// Link previews and HEAD requests redirect but are not clicks.
		for _, ua := range []string{"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
			"facebookexternalhit/1.1 Facebot Twitterbot/1.0", "WhatsApp/2.23.20.0", ""} {
			r := e.hit("GET", "/c/"+l.Code, ua, "", "")
			if r.status != http.StatusFound || r.header.Get("Location") != l.URL {
				t.Errorf("bot %q: %d to %q, want 302 to %s", ua, r.status, r.header.Get("Location"), l.URL)
			}
		}
		if r := e.hit("HEAD", "/c/"+l.Code, browserUA, "", ""); r.status != http.StatusFound {
			t.Errorf("HEAD: %d, want 302", r.status)
		}
		if got := e.events("email.clicked"); len(got) != 0 {
			t.Fatalf("%d email.clicked events from bots, want none", len(got))
		}
		previews := e.events("email.link_previewed")
		if len(previews) != 5 {
			t.Fatalf("%d email.link_previewed events, want 5", len(previews))
		}
		for _, p := range previews {
			if p.Properties["bot"] != true {
				t.Errorf("preview event without bot: true: %v", p.Properties)
			}
		}
		if _, err := eng.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		if en := enrollment(t, e); en.State != nudge.EnrollmentWaiting {
			t.Fatalf("after bot fetches the enrollment is %s, want still waiting", en.State)
		}

		// A person's clicks: each is an event; the journey moves on.
		for range 2 {
			r := e.hit("GET", "/c/"+l.Code, browserUA, "", "")
			if r.status != http.StatusFound || r.header.Get("Location") != l.URL {
				t.Fatalf("click: %d to %q, want 302 to %s", r.status, r.header.Get("Location"), l.URL)
			}
		}
		clicks := e.events("email.clicked")
		if len(clicks) != 2 {
			t.Fatalf("%d email.clicked events, want 2 (a double click is two)", len(clicks))
		}
		want := map[string]any{"message_id": m.ID, "step_id": m.StepID, "journey_id": "click", "url": l.URL, "user_agent": browserUA}
		for k, v := range want {
			if clicks[0].Properties[k] != v {
				t.Errorf("click property %s = %v, want %v", k, clicks[0].Properties[k], v)
			}
		}
		if _, ok := clicks[0].Properties["bot"]; ok {
			t.Errorf("a person's click has bot set: %v", clicks[0].Properties)
		}
		if _, err := eng.RunOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		ds, err := e.store.DecisionList(e.ctx, &nudge.DecisionListParams{ContactID: "c1", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ds, func(d *nudge.Decision) bool { return d.Reason == engine.ReasonEventArrived }) {
			t.Errorf("no %s decision after the click", engine.ReasonEventArrived)
		}
		if en := enrollment(t, e); en.State == nudge.EnrollmentWaiting {
			t.Errorf("after the click the enrollment is still %s", en.State)
		}
	})
}

func enrollment(t *testing.T, e *linkEnv) *nudge.Enrollment {
	t.Helper()
	ens, err := e.store.EnrollmentList(e.ctx, &nudge.EnrollmentListParams{ContactID: "c1"})
	if err != nil || len(ens) != 1 {
		t.Fatalf("enrollments %v, %v; want one", ens, err)
	}
	return ens[0]
}

func TestClickNotFound(t *testing.T) {
	e := newLinkEnv(t, func(t testing.TB) nudge.Store { return nudgetest.SQLite(t) })
	e.mustLinks(&nudge.Link{Code: "TOKENTOKENTOKENTOKENTOKEN2", MessageID: "m", ContactID: "c1",
		Channel: nudge.LinkUnsubscribe, Address: "ann@example.com", CreatedAt: e.clock.Now()})
	for _, path := range []string{"/c/NoSuchCode1", "/c/bad-code!", "/c/x", "/c/TOKENTOKENTOKENTOKENTOKEN2"} {
		r := e.hit("GET", path, browserUA, "", "")
		if r.status != http.StatusNotFound || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("GET %s: %d %s, want a plain 404", path, r.status, r.header.Get("Content-Type"))
		}
	}
	// A link of an erased contact still redirects and records nothing.
	e.mustLinks(&nudge.Link{Code: "Gone1234567", URL: "https://x.io", MessageID: "m", ContactID: "erased",
		Channel: nudge.ChannelSMS, CreatedAt: e.clock.Now()})
	if r := e.hit("GET", "/c/Gone1234567", browserUA, "", ""); r.status != http.StatusFound {
		t.Errorf("click of an erased contact's link: %d, want 302", r.status)
	}
	if _, err := e.store.ContactGet(e.ctx, "erased"); nudge.ErrorCode(err) != nudge.ENOTFOUND {
		t.Errorf("the click brought the contact back: %v", err)
	}
}

func TestUnsubscribe(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newLinkEnv(t, open)
		const token = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		e.mustLinks(&nudge.Link{Code: token, MessageID: "m1", ContactID: "c1", Channel: nudge.LinkUnsubscribe,
			Address: "ann@example.com", CreatedAt: e.clock.Now()})
		form := "application/x-www-form-urlencoded"

		// GET shows a button and changes nothing.
		r := e.hit("GET", "/u/"+token, browserUA, "", "")
		if r.status != 200 || !strings.Contains(string(r.body), `<form method="post">`) {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		if led := ledger(t, e); len(led) != 0 {
			t.Fatalf("GET recorded %d ledger entries", len(led))
		}
		if r := e.hit("POST", "/u/"+token, browserUA, form, "something=else"); r.status != http.StatusBadRequest {
			t.Errorf("POST without List-Unsubscribe=One-Click: %d, want 400", r.status)
		}

		for i := range 2 { // the second POST records nothing new
			r := e.hit("POST", "/u/"+token, "Google-Mail", form, "List-Unsubscribe=One-Click")
			if r.status != 200 {
				t.Fatalf("POST %d: %d %s", i+1, r.status, r.body)
			}
		}
		led := ledger(t, e)
		if len(led) != 1 {
			t.Fatalf("%d ledger entries, want 1", len(led))
		}
		got := led[0]
		if got.Channel != nudge.ChannelEmail || got.Purpose != nudge.PurposeMarketing || got.Status != nudge.ConsentOptedOut ||
			got.Source != nudge.SourceForm || got.Evidence.Text != "one-click unsubscribe (RFC 8058)" ||
			got.Evidence.FormURL != e.srv.URL+"/u/"+token {
			t.Errorf("ledger entry %+v", got)
		}

		for _, path := range []string{"/u/NOSUCHTOKENNOSUCHTOKENNOS", "/u/short", "/u/Abc123Def45"} {
			if r := e.hit("POST", path, browserUA, form, "List-Unsubscribe=One-Click"); r.status != 404 {
				t.Errorf("POST %s: %d, want 404", path, r.status)
			}
			if r := e.hit("GET", path, browserUA, "", ""); r.status != 404 {
				t.Errorf("GET %s: %d, want 404", path, r.status)
			}
		}
	})
}

// A token sent to an address the contact no longer has does not opt out
// the new address.
func TestUnsubscribeOldAddress(t *testing.T) {
	e := newLinkEnv(t, func(t testing.TB) nudge.Store { return nudgetest.SQLite(t) })
	const token = "OLDADDRESSOLDADDRESSOLDADD"
	e.mustLinks(&nudge.Link{Code: token, MessageID: "m1", ContactID: "c1", Channel: nudge.LinkUnsubscribe,
		Address: "ann@old.example", CreatedAt: e.clock.Now()})
	body := url.Values{"List-Unsubscribe": {"One-Click"}}.Encode()
	if r := e.hit("POST", "/u/"+token, browserUA, "application/x-www-form-urlencoded", body); r.status != 200 {
		t.Fatalf("POST: %d", r.status)
	}
	if led := ledger(t, e); len(led) != 0 {
		t.Errorf("%d ledger entries, want none", len(led))
	}
}

func ledger(t *testing.T, e *linkEnv) []*nudge.ConsentEntry {
	t.Helper()
	es, err := e.store.ConsentLedger(e.ctx, &nudge.ConsentLedgerParams{ContactID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	return es
}
