package api_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/nudgetest"
)

const kannelKey = "kannel-test-key-0123456789abcdef"

// newKannelEnv is an API with the Kannel key set, and jane's SMS m1 marked
// sending (see seedSMS).
func newKannelEnv(t *testing.T, open opener) *env {
	t.Helper()
	e := newEnvWith(t, open(t), func(c *api.Config) { c.KannelKey = kannelKey })
	seedSMS(t, e)
	return e
}

func (e *env) kannel(path string, q url.Values) *response {
	e.t.Helper()
	return e.do("GET", path+"?"+q.Encode(), "", nil)
}

const (
	kannelDLRPath     = "/v1/webhooks/kannel/dlr"
	kannelInboundPath = "/v1/webhooks/kannel/inbound"
)

func dlrQuery(id, typ string) url.Values {
	return url.Values{"key": {kannelKey}, "message_id": {id}, "type": {typ}}
}

func kannelInboundQuery(id, text string) url.Values {
	return url.Values{"key": {kannelKey}, "from": {"+13125550100"}, "to": {"+18005550199"}, "text": {text}, "id": {id}}
}

func TestKannelKey(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newKannelEnv(t, open)
		for name, key := range map[string][]string{
			"missing": nil,
			"wrong":   {"kannel-test-key-0123456789abcdeX"},
			"prefix":  {kannelKey[:22]},
			"empty":   {""},
		} {
			t.Run(name, func(t *testing.T) {
				q := dlrQuery("m1", "1")
				q["key"] = key
				r := e.must(e.kannel(kannelDLRPath, q), 403)
				if r.errField("code") != nudge.EFORBIDDEN {
					t.Errorf("body: %s", r.body)
				}
				q = kannelInboundQuery("in1", "STOP")
				q["key"] = key
				e.must(e.kannel(kannelInboundPath, q), 403)
			})
		}
		if got := e.history("m1"); !equal(got, []string{"queued", "sending"}) {
			t.Errorf("a rejected report changed the message: %v", got)
		}
		if st := e.smsConsent("jane"); st != nil {
			t.Errorf("a rejected STOP changed consent: %+v", st)
		}
		// An API key does not replace the Kannel key.
		e.must(e.do("GET", kannelDLRPath+"?message_id=m1&type=1", e.admin, nil), 403)
		if strings.Contains(e.logs.String(), kannelKey) {
			t.Errorf("the key is in the logs")
		}
	})
}

func TestKannelNotConfigured(t *testing.T) {
	e := newEnvWith(t, nudgetest.SQLite(t))
	e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "1")), 404)
	e.must(e.kannel(kannelInboundPath, kannelInboundQuery("in1", "STOP")), 404)
	if _, err := api.New(api.Config{Store: e.store, KannelKey: "short"}); err == nil {
		t.Error("a short Kannel key was accepted")
	}
}

func TestKannelDLR(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newKannelEnv(t, open)
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "4")), 200) // buffered: no change
		if got := e.history("m1"); !equal(got, []string{"queued", "sending"}) {
			t.Errorf("after 4: %v", got)
		}
		// Delivered arrives before the SMSC's acknowledgement (8), which
		// then does not move the message back; a repeat changes nothing.
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "1")), 200)
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "8")), 200)
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "1")), 200)
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "2")), 200)
		if got := e.history("m1"); !equal(got, []string{"queued", "sending", "delivered"}) {
			t.Errorf("history = %v", got)
		}
		// An unknown message is acknowledged, so Kannel does not log errors.
		e.must(e.kannel(kannelDLRPath, dlrQuery("nope", "1")), 200)
		// Not Kannel's.
		e.must(e.kannel(kannelDLRPath, dlrQuery("m1", "%d")), 400)
		e.must(e.kannel(kannelDLRPath, dlrQuery("", "1")), 400)
	})
}

func TestKannelDLRFailed(t *testing.T) {
	for typ, want := range map[string]string{"16": nudge.MessageFailed, "2": nudge.MessageUndelivered, "8": nudge.MessageSent} {
		t.Run(typ, func(t *testing.T) {
			e := newKannelEnv(t, sqliteOnly)
			e.must(e.kannel(kannelDLRPath, dlrQuery("m1", typ)), 200)
			if got := e.history("m1"); !equal(got, []string{"queued", "sending", want}) {
				t.Errorf("history = %v", got)
			}
		})
	}
}

func TestKannelInbound(t *testing.T) {
	forEachStore(t, func(t *testing.T, open opener) {
		e := newKannelEnv(t, open)
		r := e.must(e.kannel(kannelInboundPath, kannelInboundQuery("in1", "Is it at 5?")), 200)
		if len(r.body) != 0 {
			t.Errorf("a reply to a plain message: %q", r.body)
		}
		// Kannel calling twice stores one event.
		e.must(e.kannel(kannelInboundPath, kannelInboundQuery("in1", "Is it at 5?")), 200)
		if ev := e.replies("jane"); len(ev) != 1 || ev[0].Properties["body"] != "Is it at 5?" {
			t.Errorf("replies = %+v", ev)
		}

		// STOP, from a number as an SMSC writes it (no +).
		q := kannelInboundQuery("in2", "stop")
		q.Set("from", "13125550100")
		r = e.must(e.kannel(kannelInboundPath, q), 200)
		if len(r.body) == 0 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("STOP answered %q (%s), want the confirmation as text", r.body, r.header.Get("Content-Type"))
		}
		st := e.smsConsent("jane")
		if st == nil || st.Status != nudge.ConsentOptedOut || st.Source != nudge.SourceKeyword {
			t.Fatalf("consent after STOP = %+v", st)
		}
		if len(e.replies("jane")) != 1 {
			t.Errorf("STOP became a reply event")
		}
		// Kannel retrying the same STOP (same %I) records and confirms it once.
		r = e.must(e.kannel(kannelInboundPath, q), 200)
		if len(r.body) != 0 {
			t.Errorf("a retried STOP was confirmed again: %q", r.body)
		}
		if l := e.ledger("jane"); len(l) != 1 {
			t.Errorf("ledger after a retried STOP has %d entries; want 1", len(l))
		}

		// A STOP from a number no contact has is acknowledged.
		q = kannelInboundQuery("in3", "STOP")
		q.Set("from", "+13125550111")
		e.must(e.kannel(kannelInboundPath, q), 200)
		q.Del("from")
		e.must(e.kannel(kannelInboundPath, q), 400)
	})
}

func sqliteOnly(t testing.TB) nudge.Store { return nudgetest.SQLite(t) }
