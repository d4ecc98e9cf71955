package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/channel/twilio"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/policy"
)

const twilioToken = "twilio-test-auth-token"

// twilioEnv is an API with Twilio webhooks configured, and contact jane
// (+13125550100) with one SMS, m1, that Twilio knows as SM1 and that Nudge
// marked sending.
type twilioEnv struct {
	*env
}

func newTwilioEnv(t *testing.T, open opener, opts ...func(*api.Config)) *twilioEnv {
	t.Helper()
	te := &twilioEnv{}
	opts = append([]func(*api.Config){func(c *api.Config) { c.TwilioAuthToken = twilioToken }}, opts...)
	te.env = newEnvWith(t, open(t), opts...)
	seedSMS(t, te.env)
	return te
}

func seedSMS(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	t0 := nudgetest.Epoch
	if _, _, err := e.store.ContactPut(ctx, &nudge.Contact{ID: "jane", Phone: "+13125550100"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: "webinar-reminder", Name: "Webinar reminder", Source: []byte(webinarYAML(t))}, t0); err != nil {
		t.Fatal(err)
	}
	en := &nudge.Enrollment{ID: "en1", JourneyID: "webinar-reminder", Version: 1, ContactID: "jane", State: nudge.EnrollmentWaiting,
		StepID: "hour-before", WakeAt: t0.Add(48 * time.Hour), EnteredAt: t0, UpdatedAt: t0, Steps: map[string]nudge.StepRecord{}}
	m := &nudge.Message{ID: "m1", EnrollmentID: "en1", ContactID: "jane", JourneyID: "webinar-reminder", Version: 1, StepID: "text",
		Channel: nudge.ChannelSMS, Template: "webinar-sms", Purpose: nudge.PurposeMarketing, Status: nudge.MessageQueued,
		IdempotencyKey: "en1:text", AvailableAt: t0, CreatedAt: t0, UpdatedAt: t0}
	if err := e.store.EngineCommit(ctx, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{en}, Messages: []*nudge.Message{m}}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.MessageUpdate(ctx, []*nudge.MessageUpdate{{MessageID: "m1", Status: nudge.MessageSending, ProviderID: "SM1", Attempts: 1}}, t0); err != nil {
		t.Fatal(err)
	}
}

// twilio posts form to path as Twilio would, signed over the server's URL.
func (e *env) twilio(path string, form url.Values) *response {
	e.t.Helper()
	return e.twilioSigned(path, form, twilio.Sign(twilioToken, e.srv.URL+path, form), nil)
}

func (e *env) twilioSigned(path string, form url.Values, sig string, header http.Header) *response {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return e.send(req)
}

func statusForm(sid, status, code string) url.Values {
	f := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "To": {"+13125550100"}, "From": {"+18005550199"}, "AccountSid": {"AC1"}}
	if code != "" {
		f.Set("ErrorCode", code)
	}
	return f
}

func inboundForm(sid, body string) url.Values {
	return url.Values{"MessageSid": {sid}, "AccountSid": {"AC1"}, "From": {"+13125550100"}, "To": {"+18005550199"},
		"Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"}}
}

const (
	statusPath  = "/v1/webhooks/twilio/status"
	inboundPath = "/v1/webhooks/twilio/inbound"
)

func (e *env) history(id string) []string {
	e.t.Helper()
	h, err := e.store.MessageHistory(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, x := range h {
		out = append(out, x.Status)
	}
	return out
}

func (e *env) smsConsent(contactID string) *nudge.ConsentState {
	e.t.Helper()
	states, err := e.store.ConsentList(context.Background(), contactID)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, st := range states {
		if st.Channel == nudge.ChannelSMS && st.Purpose == nudge.PurposeMarketing {
			return st
		}
	}
	return nil
}

func (e *env) ledger(contactID string) []*nudge.ConsentEntry {
	e.t.Helper()
	l, err := e.store.ConsentLedger(context.Background(), &nudge.ConsentLedgerParams{ContactID: contactID})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) suppressions() []*nudge.Suppression {
	e.t.Helper()
	l, err := e.store.SuppressionList(context.Background(), &nudge.SuppressionListParams{Channel: nudge.ChannelSMS})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

func (e *env) replies(contactID string) []*nudge.Event {
	e.t.Helper()
	p, err := e.store.EventList(context.Background(), &nudge.EventListParams{ContactID: contactID, Name: "sms.replied"})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Events
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestTwilioSignature(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newTwilioEnv(t, open)
		f := statusForm("SM1", "delivered", "")
		for name, sig := range map[string]string{
			"missing":     "",
			"wrong token": twilio.Sign("another-token", e.srv.URL+statusPath, f),
			"wrong url":   twilio.Sign(twilioToken, "https://evil.example.com"+statusPath, f),
			"other form":  twilio.Sign(twilioToken, e.srv.URL+statusPath, statusForm("SM1", "failed", "")),
		} {
			t.Run(name, func(t *testing.T) {
				r := e.must(e.twilioSigned(statusPath, f, sig, nil), 403)
				if r.errField("code") != nudge.EFORBIDDEN {
					t.Errorf("body: %s", r.body)
				}
				e.must(e.twilioSigned(inboundPath, inboundForm("SMin", "STOP"), sig, nil), 403)
			})
		}
		if got := e.history("m1"); !equal(got, []string{"queued", "sending"}) {
			t.Errorf("a rejected callback changed the message: %v", got)
		}
		if st := e.smsConsent("jane"); st != nil {
			t.Errorf("a rejected STOP changed consent: %+v", st)
		}
		// No API key is needed, and one does not replace the signature.
		req, _ := http.NewRequest("POST", e.srv.URL+statusPath, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+e.admin)
		e.must(e.send(req), 403)
		// A malformed but signed form is a client error.
		e.must(e.twilio(statusPath, url.Values{"MessageStatus": {"sent"}}), 400)
	})
}

func TestTwilioPublicURL(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		t.Run("configured", func(t *testing.T) {
			e := newTwilioEnv(t, open, func(c *api.Config) { c.PublicURL = "https://nudge.example.com/" })
			f := statusForm("SM1", "sent", "")
			// Twilio signed the public URL, with or without the port.
			e.must(e.twilioSigned(statusPath, f, twilio.Sign(twilioToken, "https://nudge.example.com"+statusPath, f), nil), 200)
			f = statusForm("SM1", "delivered", "")
			e.must(e.twilioSigned(statusPath, f, twilio.Sign(twilioToken, "https://nudge.example.com:443"+statusPath, f), nil), 200)
			e.must(e.twilio(statusPath, f), 403) // the local URL is not what Twilio called
		})
		t.Run("forwarded proto", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			f := statusForm("SM1", "sent", "")
			u := strings.Replace(e.srv.URL, "http://", "https://", 1) + statusPath + "?x=1"
			h := http.Header{"X-Forwarded-Proto": {"https"}}
			e.must(e.twilioSigned(statusPath+"?x=1", f, twilio.Sign(twilioToken, u, f), h), 200)
		})
		t.Run("not configured", func(t *testing.T) {
			e := newEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SM1", "sent", "")), 404)
			e.must(e.twilio(inboundPath, inboundForm("SMin", "hi")), 404)
		})
		t.Run("bad", func(t *testing.T) {
			if _, err := api.New(api.Config{Store: open(t), PublicURL: "nudge.example.com"}); err == nil {
				t.Error("a PublicURL without a scheme was accepted")
			}
		})
	})
}

func TestTwilioStatus(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		t.Run("in order", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			for _, st := range []string{"queued", "sent", "delivered"} {
				r := e.must(e.twilio(statusPath, statusForm("SM1", st, "")), 200)
				if !strings.Contains(string(r.body), "<Response/>") {
					t.Errorf("answer: %s", r.body)
				}
			}
			if got := e.history("m1"); !equal(got, []string{"queued", "sending", "sent", "delivered"}) {
				t.Errorf("history %v", got)
			}
		})
		t.Run("out of order", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SM1", "delivered", "")), 200)
			e.must(e.twilio(statusPath, statusForm("SM1", "sent", "")), 200)
			if got := e.history("m1"); !equal(got, []string{"queued", "sending", "delivered"}) {
				t.Errorf("history %v", got)
			}
			m, err := e.store.MessageGet(context.Background(), "m1")
			if err != nil || m.Status != nudge.MessageDelivered {
				t.Errorf("message %+v, %v", m, err)
			}
		})
		t.Run("replayed", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			for range 3 {
				e.must(e.twilio(statusPath, statusForm("SM1", "sent", "")), 200)
			}
			if got := e.history("m1"); !equal(got, []string{"queued", "sending", "sent"}) {
				t.Errorf("history %v", got)
			}
		})
		t.Run("unknown sid", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SMnobody", "delivered", "")), 200)
			if !strings.Contains(e.logs.String(), "unknown message") {
				t.Errorf("no warning logged:\n%s", e.logs)
			}
			// A carrier opt-out is about the number: it is suppressed even so.
			e.must(e.twilio(statusPath, statusForm("SMnobody", "failed", "21610")), 200)
			if s := e.suppressions(); len(s) != 1 || s[0].Reason != nudge.SuppressProviderOptOut {
				t.Errorf("suppressions %+v", s)
			}
		})
		t.Run("failed", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SM1", "failed", "30007")), 200)
			m, err := e.store.MessageGet(context.Background(), "m1")
			if err != nil || m.Status != nudge.MessageFailed || !strings.Contains(m.Error, "30007") {
				t.Errorf("message %+v, %v", m, err)
			}
			if s := e.suppressions(); len(s) != 0 {
				t.Errorf("30007 (carrier filtering) suppressed the number: %+v", s)
			}
		})
		t.Run("21610", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SM1", "undelivered", "21610")), 200)
			e.must(e.twilio(statusPath, statusForm("SM1", "undelivered", "21610")), 200) // replayed
			st := e.smsConsent("jane")
			if st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceProvider {
				t.Fatalf("consent %+v", st)
			}
			l := e.ledger("jane")
			if len(l) != 1 || !strings.Contains(l[0].Evidence.Keyword, "21610") {
				t.Errorf("ledger %+v", l)
			}
			s := e.suppressions()
			if len(s) != 1 || s[0].Reason != nudge.SuppressProviderOptOut || s[0].Source != nudge.SourceProvider {
				t.Errorf("suppressions %+v", s)
			}
			if got := e.history("m1"); !equal(got, []string{"queued", "sending", "undelivered"}) {
				t.Errorf("history %v", got)
			}
		})
		t.Run("unreachable", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(statusPath, statusForm("SM1", "undelivered", "30006")), 200)
			s := e.suppressions()
			if len(s) != 1 || s[0].Reason != nudge.SuppressUnreachable {
				t.Errorf("suppressions %+v", s)
			}
			if st := e.smsConsent("jane"); st != nil {
				t.Errorf("an unreachable number changed consent: %+v", st)
			}
		})
	})
}

func TestTwilioInbound(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		for _, body := range []string{"STOP", "Stop.", " stop ", "unsubscribe"} {
			t.Run("opt out "+body, func(t *testing.T) {
				e := newTwilioEnv(t, open)
				r := e.must(e.twilio(inboundPath, inboundForm("SMin1", body)), 200)
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
					t.Errorf("content type %q", ct)
				}
				want := `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Nudge: You are unsubscribed`
				if !strings.HasPrefix(string(r.body), want) || !strings.HasSuffix(string(r.body), "</Message></Response>") {
					t.Errorf("answer: %s", r.body)
				}
				st := e.smsConsent("jane")
				if st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceKeyword {
					t.Fatalf("consent %+v", st)
				}
				l := e.ledger("jane")
				if len(l) != 1 || l[0].Evidence.Keyword != strings.ToUpper(strings.Trim(body, " .")) {
					t.Errorf("ledger %+v", l)
				}
				if ev := e.replies("jane"); len(ev) != 0 {
					t.Errorf("a keyword became a reply: %+v", ev)
				}
			})
		}
		t.Run("a retried STOP is recorded and confirmed once", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(inboundPath, inboundForm("SMretry", "STOP")), 200)
			r := e.must(e.twilio(inboundPath, inboundForm("SMretry", "STOP")), 200)
			if strings.Contains(string(r.body), "<Message>") {
				t.Errorf("the retry was confirmed again: %s", r.body)
			}
			if l := e.ledger("jane"); len(l) != 1 {
				t.Errorf("ledger after a retried STOP has %d entries; want 1: %+v", len(l), l)
			}
		})
		t.Run("opt in", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			e.must(e.twilio(inboundPath, inboundForm("SMin1", "STOP")), 200)
			r := e.must(e.twilio(inboundPath, inboundForm("SMin2", "start")), 200)
			if !strings.Contains(string(r.body), "You are subscribed") || !strings.Contains(string(r.body), "Msg &amp; data rates may apply") {
				t.Errorf("answer (escaped): %s", r.body)
			}
			st := e.smsConsent("jane")
			if st == nil || st.Status != nudge.ConsentOptedIn || st.Source != nudge.SourceKeyword {
				t.Errorf("consent %+v", st)
			}
		})
		t.Run("help", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			r := e.must(e.twilio(inboundPath, inboundForm("SMin1", "HELP")), 200)
			for _, s := range []string{"Msg &amp; data rates may apply", "Reply STOP to opt out", "Support:"} {
				if !strings.Contains(string(r.body), s) {
					t.Errorf("help answer lacks %q: %s", s, r.body)
				}
			}
			if st := e.smsConsent("jane"); st != nil {
				t.Errorf("HELP changed consent: %+v", st)
			}
		})
		t.Run("revocation flagged", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			r := e.must(e.twilio(inboundPath, inboundForm("SMin1", "please stop texting me")), 200)
			if !strings.Contains(string(r.body), "<Response/>") {
				t.Errorf("answer: %s", r.body)
			}
			if st := e.smsConsent("jane"); st != nil {
				t.Errorf("by default a revocation in words is only flagged: %+v", st)
			}
			ev := e.replies("jane")
			if len(ev) != 1 || ev[0].Properties["review"] != true {
				t.Fatalf("events %+v", ev)
			}
			if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), "review") {
				t.Errorf("not logged at warn:\n%s", e.logs)
			}
		})
		t.Run("revocation opts out", func(t *testing.T) {
			e := newTwilioEnv(t, open, func(c *api.Config) {
				c.Keywords = policy.DefaultKeywords()
				c.Keywords.RevocationOptOut = true
			})
			r := e.must(e.twilio(inboundPath, inboundForm("SMin1", "please stop texting me")), 200)
			if !strings.Contains(string(r.body), "unsubscribed") {
				t.Errorf("answer: %s", r.body)
			}
			if st := e.smsConsent("jane"); st == nil || st.Status != nudge.ConsentOptedOut {
				t.Errorf("consent %+v", st)
			}
			if ev := e.replies("jane"); len(ev) != 1 || ev[0].Properties["review"] != true {
				t.Errorf("the words are kept for review: %+v", ev)
			}
		})
		t.Run("reply", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			f := inboundForm("SMin1", "Yes I'll be there <3")
			for range 2 { // Twilio retried
				r := e.must(e.twilio(inboundPath, f), 200)
				if !strings.Contains(string(r.body), "<Response/>") {
					t.Errorf("answer: %s", r.body)
				}
			}
			ev := e.replies("jane")
			if len(ev) != 1 {
				t.Fatalf("%d events, want 1: %+v", len(ev), ev)
			}
			p := ev[0].Properties
			if p["body"] != "Yes I'll be there <3" || p["from"] != "+13125550100" || p["to"] != "+18005550199" || p["message_sid"] != "SMin1" {
				t.Errorf("properties %v", p)
			}
			if st := e.smsConsent("jane"); st != nil {
				t.Errorf("a reply changed consent: %+v", st)
			}
		})
		t.Run("every contact with the number", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			if _, _, err := e.store.ContactPut(context.Background(), &nudge.Contact{ID: "jane-work", Phone: "+13125550100"}, nudgetest.Epoch); err != nil {
				t.Fatal(err)
			}
			e.must(e.twilio(inboundPath, inboundForm("SMin1", "see you")), 200)
			e.must(e.twilio(inboundPath, inboundForm("SMin2", "STOP")), 200)
			for _, id := range []string{"jane", "jane-work"} {
				if n := len(e.replies(id)); n != 1 {
					t.Errorf("%s: %d replies", id, n)
				}
				if st := e.smsConsent(id); st == nil || st.Status != nudge.ConsentOptedOut {
					t.Errorf("%s: consent %+v", id, st)
				}
			}
		})
		t.Run("unknown number", func(t *testing.T) {
			// Consent belongs to the number: a STOP before any contact has
			// it holds the contact who gets it later, and a retry of the
			// webhook records nothing twice.
			e := newTwilioEnv(t, open)
			f := inboundForm("SMin1", "STOP")
			f.Set("From", "+13125559999")
			r := e.must(e.twilio(inboundPath, f), 200)
			if !strings.Contains(string(r.body), "unsubscribed") {
				t.Errorf("an opt-out is acknowledged even from an unknown number: %s", r.body)
			}
			if r := e.must(e.twilio(inboundPath, f), 200); !strings.Contains(string(r.body), "<Response/>") {
				t.Errorf("a retried STOP was confirmed again: %s", r.body)
			}
			if _, _, err := e.store.ContactPut(context.Background(), &nudge.Contact{ID: "late", Phone: "+13125559999"}, nudgetest.Epoch); err != nil {
				t.Fatal(err)
			}
			if st := e.smsConsent("late"); st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceKeyword {
				t.Errorf("a contact created after the STOP has consent %+v; want opted out by keyword", st)
			}
			if l := e.ledger("late"); len(l) != 1 {
				t.Errorf("ledger has %d entries after a STOP and its retry; want 1", len(l))
			}
			f = inboundForm("SMin2", "START")
			f.Set("From", "+13125559999")
			if r := e.must(e.twilio(inboundPath, f), 200); strings.Contains(string(r.body), "<Response/>") {
				t.Errorf("an opt-in was not confirmed: %s", r.body)
			}
			if st := e.smsConsent("late"); st == nil || st.Status != nudge.ConsentOptedIn {
				t.Errorf("after START, consent %+v; want opted in", st)
			}
		})
		t.Run("twilio matched", func(t *testing.T) {
			e := newTwilioEnv(t, open)
			f := inboundForm("SMin1", "Stopp")
			f.Set("OptOutType", "STOP")
			r := e.must(e.twilio(inboundPath, f), 200)
			if !strings.Contains(string(r.body), "<Response/>") {
				t.Errorf("Twilio sends its own confirmation; Nudge must not send a second: %s", r.body)
			}
			if st := e.smsConsent("jane"); st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceKeyword {
				t.Errorf("consent %+v", st)
			}
			if l := e.ledger("jane"); len(l) != 1 || l[0].Evidence.Keyword != "STOPP" {
				t.Errorf("ledger %+v", l)
			}
		})
		t.Run("send sms", func(t *testing.T) {
			var sent []string
			e := newTwilioEnv(t, open, func(c *api.Config) {
				c.SendSMS = func(ctx context.Context, to, body string) error {
					sent = append(sent, to+": "+body)
					return nil
				}
			})
			r := e.must(e.twilio(inboundPath, inboundForm("SMin1", "STOP")), 200)
			if !strings.Contains(string(r.body), "<Response/>") {
				t.Errorf("answer: %s", r.body)
			}
			if len(sent) != 1 || !strings.HasPrefix(sent[0], "+13125550100: Nudge: You are unsubscribed") {
				t.Errorf("sent %q", sent)
			}
		})
	})
}
