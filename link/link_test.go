package link_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/link"
	"github.com/nudge/nudge/nudgetest"
)

func TestRewrite(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     string
		html   bool
		want   string
		minted []string
	}{
		{name: "sms with two urls",
			in:     "Hi! See https://shop.example/sale and http://x.io/b now",
			want:   "Hi! See S1 and S2 now",
			minted: []string{"https://shop.example/sale", "http://x.io/b"}},
		{name: "query and trailing dot",
			in:     "Go to https://x.io/a?b=1.",
			want:   "Go to S1.",
			minted: []string{"https://x.io/a?b=1"}},
		{name: "trailing punctuation",
			in:     "(see https://x.io/a), or https://x.io/b!",
			want:   "(see S1), or S2!",
			minted: []string{"https://x.io/a", "https://x.io/b"}},
		{name: "balanced parenthesis kept",
			in:     "https://en.wikipedia.org/wiki/Go_(language) rocks",
			want:   "S1 rocks",
			minted: []string{"https://en.wikipedia.org/wiki/Go_(language)"}},
		{name: "no url", in: "Reply STOP to opt out. Visit x.io", want: "Reply STOP to opt out. Visit x.io"},
		{name: "bare scheme", in: "https:// nothing", want: "https:// nothing"},
		{name: "html href",
			html:   true,
			in:     `<p>Visit https://plain.example <a class="b" href="https://x.io/a?b=1&amp;c=2">here</a> <a href='http://y.io'>y</a> <a href="mailto:a@b.c">m</a></p>`,
			want:   `<p>Visit https://plain.example <a class="b" href="S1">here</a> <a href='S2'>y</a> <a href="mailto:a@b.c">m</a></p>`,
			minted: []string{"https://x.io/a?b=1&c=2", "http://y.io"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			out := link.Rewrite(tt.in, tt.html, func(u string) string {
				got = append(got, u)
				return "S" + string(rune('0'+len(got)))
			})
			if out != tt.want {
				t.Errorf("Rewrite = %q, want %q", out, tt.want)
			}
			if strings.Join(got, " ") != strings.Join(tt.minted, " ") {
				t.Errorf("minted %q, want %q", got, tt.minted)
			}
		})
	}
	t.Run("mint declines", func(t *testing.T) {
		in := "keep https://x.io/a."
		if out := link.Rewrite(in, false, func(string) string { return "" }); out != in {
			t.Errorf("Rewrite = %q, want it unchanged", out)
		}
	})
}

func TestCodes(t *testing.T) {
	const n = 2000
	seen := map[string]bool{}
	for range n {
		c := link.NewCode()
		if len(c) != link.CodeLen || !link.ValidCode(c) {
			t.Fatalf("code %q: length %d or alphabet wrong", c, len(c))
		}
		if seen[c] {
			t.Fatalf("code %q repeated", c)
		}
		seen[c] = true
	}
	if bits := float64(link.CodeLen) * math.Log2(62); bits < 64 {
		t.Errorf("codes carry %.1f bits, want at least 64", bits)
	}
	tok := link.NewToken()
	if len(tok)*5 < 128 || !link.ValidCode(tok) {
		t.Errorf("token %q: %d bits, want at least 128", tok, len(tok)*5)
	}
	for _, bad := range []string{"", "short", "has-dash1234", strings.Repeat("a", 65), "abc/def/ghij"} {
		if link.ValidCode(bad) {
			t.Errorf("ValidCode(%q) = true", bad)
		}
	}
}

type fakeStore struct {
	calls [][]*nudge.Link
}

func (f *fakeStore) LinkCreate(_ context.Context, ls []*nudge.Link) error {
	f.calls = append(f.calls, ls)
	return nil
}
func (f *fakeStore) LinkGet(context.Context, string) (*nudge.Link, error) {
	return nil, nudge.Errorf(nudge.ENOTFOUND, "no")
}

func TestPrepare(t *testing.T) {
	base := "https://n.example/"
	newTracker := func(t *testing.T, mailto string) (*link.Tracker, *fakeStore) {
		t.Helper()
		st := &fakeStore{}
		tr, err := link.NewTracker(link.Config{Store: st, Clock: nudgetest.NewClock(nudgetest.Epoch), PublicURL: base, UnsubscribeMailto: mailto})
		if err != nil {
			t.Fatal(err)
		}
		return tr, st
	}
	c := &nudge.Contact{ID: "c1", Email: "ann@example.com", Phone: "+15551230000"}

	t.Run("sms", func(t *testing.T) {
		tr, st := newTracker(t, "")
		m := &nudge.Message{ID: "m1", ContactID: "c1", JourneyID: "j1", StepID: "s1", Channel: nudge.ChannelSMS}
		o := &nudge.Outbound{Channel: nudge.ChannelSMS, To: c.Phone, Text: "Sale: https://shop.example/a?utm=x. Reply STOP to opt out"}
		if err := tr.Prepare(context.Background(), m, c, o); err != nil {
			t.Fatal(err)
		}
		if len(st.calls) != 1 || len(st.calls[0]) != 1 {
			t.Fatalf("LinkCreate calls %v, want one with one link", st.calls)
		}
		l := st.calls[0][0]
		want := "Sale: https://n.example/c/" + l.Code + ". Reply STOP to opt out"
		if o.Text != want {
			t.Errorf("text %q, want %q", o.Text, want)
		}
		if l.URL != "https://shop.example/a?utm=x" || l.MessageID != "m1" || l.ContactID != "c1" || l.JourneyID != "j1" ||
			l.StepID != "s1" || l.Channel != nudge.ChannelSMS || !l.CreatedAt.Equal(nudgetest.Epoch) {
			t.Errorf("link %+v", l)
		}
		if len(o.Headers) != 0 {
			t.Errorf("SMS headers %v", o.Headers)
		}
	})
	t.Run("sms without links stores nothing", func(t *testing.T) {
		tr, st := newTracker(t, "")
		o := &nudge.Outbound{Channel: nudge.ChannelSMS, Text: "Hello"}
		if err := tr.Prepare(context.Background(), &nudge.Message{ID: "m", Channel: nudge.ChannelSMS}, c, o); err != nil {
			t.Fatal(err)
		}
		if len(st.calls) != 0 {
			t.Errorf("LinkCreate called %d times", len(st.calls))
		}
	})
	t.Run("marketing email", func(t *testing.T) {
		tr, st := newTracker(t, "unsubscribe@n.example")
		m := &nudge.Message{ID: "m2", ContactID: "c1", Channel: nudge.ChannelEmail}
		o := &nudge.Outbound{Channel: nudge.ChannelEmail, To: c.Email, HTML: `<a href="https://x.io/a">a</a>`, Text: "https://x.io/a"}
		if err := tr.Prepare(context.Background(), m, c, o); err != nil {
			t.Fatal(err)
		}
		if len(st.calls) != 1 || len(st.calls[0]) != 2 {
			t.Fatalf("LinkCreate calls %v, want one with a link and a token", st.calls)
		}
		l, tok := st.calls[0][0], st.calls[0][1]
		if o.HTML != `<a href="https://n.example/c/`+l.Code+`">a</a>` || o.Text != "https://x.io/a" {
			t.Errorf("HTML %q text %q", o.HTML, o.Text)
		}
		if tok.Channel != nudge.LinkUnsubscribe || tok.Address != c.Email || len(tok.Code) < 26 {
			t.Errorf("token %+v", tok)
		}
		want := "<https://n.example/u/" + tok.Code + ">, <mailto:unsubscribe@n.example?subject=unsubscribe>"
		if got := o.Headers["List-Unsubscribe"]; got != want {
			t.Errorf("List-Unsubscribe %q, want %q", got, want)
		}
		if got := o.Headers["List-Unsubscribe-Post"]; got != "List-Unsubscribe=One-Click" {
			t.Errorf("List-Unsubscribe-Post %q", got)
		}
	})
	t.Run("transactional email has no unsubscribe header", func(t *testing.T) {
		tr, st := newTracker(t, "")
		m := &nudge.Message{ID: "m3", ContactID: "c1", Channel: nudge.ChannelEmail, Purpose: nudge.PurposeTransactional}
		o := &nudge.Outbound{Channel: nudge.ChannelEmail, To: c.Email, HTML: "<p>receipt</p>"}
		if err := tr.Prepare(context.Background(), m, c, o); err != nil {
			t.Fatal(err)
		}
		if len(st.calls) != 0 || o.Headers["List-Unsubscribe"] != "" {
			t.Errorf("calls %v headers %v", st.calls, o.Headers)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		for _, cfg := range []link.Config{
			{PublicURL: base},
			{Store: &fakeStore{}, PublicURL: "n.example"},
			{Store: &fakeStore{}, PublicURL: base, UnsubscribeMailto: "not an address"},
		} {
			if _, err := link.NewTracker(cfg); nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("NewTracker(%+v): %v, want EINVALID", cfg, err)
			}
		}
	})
}

// FuzzRewrite: Rewrite never panics, leaves text alone when mint declines,
// and hands mint only http(s) URLs.
func FuzzRewrite(f *testing.F) {
	f.Add("see https://x.io/a?b=1. and (http://y.io/(z)))", false)
	f.Add(`<a href="https://x.io/?a=1&amp;b=2">x</a><a HREF = 'http://y'>`, true)
	f.Fuzz(func(t *testing.T, s string, isHTML bool) {
		if out := link.Rewrite(s, isHTML, func(string) string { return "" }); out != s {
			t.Fatalf("Rewrite changed %q to %q with a declining mint", s, out)
		}
		link.Rewrite(s, isHTML, func(u string) string {
			l := strings.ToLower(u)
			if !strings.HasPrefix(l, "http://") && !strings.HasPrefix(l, "https://") {
				t.Fatalf("mint got %q", u)
			}
			return "S"
		})
	})
}

func TestPrepareChecksRewrittenSMS(t *testing.T) {
	st := &fakeStore{}
	tr, err := link.NewTracker(link.Config{Store: st, PublicURL: "https://n.example",
		CheckSMS: func(text string) error {
			if len(text) > 30 {
				return nudge.Errorf(nudge.EINVALID, "too long")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	o := &nudge.Outbound{Channel: nudge.ChannelSMS, Text: "Go http://x.io now"}
	err = tr.Prepare(context.Background(), &nudge.Message{ID: "m", Channel: nudge.ChannelSMS}, &nudge.Contact{}, o)
	if err == nil || len(st.calls) != 0 {
		t.Errorf("Prepare = %v with %d LinkCreate calls; want the check's error and nothing stored", err, len(st.calls))
	}
}
