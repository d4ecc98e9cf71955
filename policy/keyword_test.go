package policy

import (
	"strings"
	"testing"
)

func TestParseKeyword(t *testing.T) {
	cfg := DefaultKeywords()
	cfg.Program, cfg.Frequency, cfg.Support = "Acme Events", "Up to 4 msgs/month", "help@acme.example"
	cases := []struct {
		body, kind, word, lang string
	}{
		{"STOP", KeywordOptOut, "STOP", "en"},
		{"stop", KeywordOptOut, "STOP", "en"},
		{"Stop.", KeywordOptOut, "STOP", "en"},
		{" stop ", KeywordOptOut, "STOP", "en"},
		{"\tSTOP!!\n", KeywordOptOut, "STOP", "en"},
		{"STOP ALL", KeywordOptOut, "STOPALL", "en"},
		{"stopall", KeywordOptOut, "STOPALL", "en"},
		{"Unsubscribe", KeywordOptOut, "UNSUBSCRIBE", "en"},
		{"cancel", KeywordOptOut, "CANCEL", "en"},
		{"END", KeywordOptOut, "END", "en"},
		{"quit", KeywordOptOut, "QUIT", "en"},
		{"OPTOUT", KeywordOptOut, "OPTOUT", "en"},
		{"opt-out", KeywordOptOut, "OPTOUT", "en"},
		{"Opt out", KeywordOptOut, "OPTOUT", "en"},
		{"revoke", KeywordOptOut, "REVOKE", "en"},
		{"remove", KeywordOptOut, "REMOVE", "en"},
		{"TD", KeywordOptOut, "TD", "en"},
		{"ＳＴＯＰ", KeywordOptOut, "STOP", "en"},       // full-width
		{"S\u200bTOP", KeywordOptOut, "STOP", "en"}, // zero-width space
		{"STOP 🛑", KeywordOptOut, "STOP", "en"},
		{"Arrêt", KeywordOptOut, "ARRET", "fr"},
		{"ARRET", KeywordOptOut, "ARRET", "fr"},
		{"start", KeywordOptIn, "START", "en"},
		{"Yes!", KeywordOptIn, "YES", "en"},
		{"unstop", KeywordOptIn, "UNSTOP", "en"},
		{"HELP", KeywordHelp, "HELP", "en"},
		{"info?", KeywordHelp, "INFO", "en"},
		{"aide", KeywordHelp, "AIDE", "fr"},
		{"stopp", KeywordReview, "STOP", "en"},
		{"sotp", KeywordReview, "STOP", "en"},
		{"unsubscrib", KeywordReview, "UNSUBSCRIBE", "en"},
		{"please stop texting me", KeywordReview, "STOP", "en"},
		{"Don't text me again", KeywordReview, "dont text", "en"},
		{"remove me from this list", KeywordReview, "remove me", "en"},
		{"wrong number", KeywordReview, "wrong number", "en"},
		{"STOP STOP STOP", KeywordReview, "STOP", "en"},
		{"arrêtez svp", KeywordReview, "arretez", "fr"},
		{"yes please", KeywordReply, "", ""},
		{"See you at the webinar", KeywordReply, "", ""},
		{"I want to cancel my booking", KeywordReply, "", ""},
		{"stopwatch", KeywordReply, "", ""},
		{"", KeywordReply, "", ""},
		{"!!!", KeywordReply, "", ""},
		{"end.", KeywordOptOut, "END", "en"},
		{"top", KeywordReply, "", ""},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			k := ParseKeyword(c.body, cfg)
			if k.Kind != c.kind || k.Word != c.word || k.Language != c.lang {
				t.Fatalf("got %s %q %s, want %s %q %s", k.Kind, k.Word, k.Language, c.kind, c.word, c.lang)
			}
			if (k.Kind == KeywordReview) != k.Review {
				t.Errorf("review %v", k.Review)
			}
			switch k.Kind {
			case KeywordOptOut, KeywordOptIn, KeywordHelp:
				if k.Reply == "" || strings.Contains(k.Reply, "{") {
					t.Errorf("reply %q", k.Reply)
				}
			default:
				if k.Reply != "" {
					t.Errorf("reply %q to a %s", k.Reply, k.Kind)
				}
			}
		})
	}
	help := ParseKeyword("HELP", cfg).Reply
	for _, s := range []string{"Acme Events", "Up to 4 msgs/month", "Msg & data rates may apply", "STOP", "help@acme.example"} {
		if !strings.Contains(help, s) {
			t.Errorf("help %q does not name %q", help, s)
		}
	}
	out := ParseKeyword("stop", cfg).Reply
	if !strings.Contains(out, "unsubscribed") || strings.Contains(out, "http") {
		t.Errorf("opt-out confirmation %q", out)
	}
	// Configured to count a revocation as an opt-out.
	cfg.RevocationOptOut = true
	if k := ParseKeyword("please stop texting me", cfg); k.Kind != KeywordOptOut || !k.Review || k.Reply == "" {
		t.Errorf("revocation as opt-out: %+v", k)
	}
}

func FuzzParseKeyword(f *testing.F) {
	for _, s := range []string{"STOP", "Stop.", "please stop texting me", "ＳＴＯＰ", "arrêt", "yes"} {
		f.Add(s)
	}
	cfg := DefaultKeywords()
	f.Fuzz(func(t *testing.T, body string) {
		k := ParseKeyword(body, cfg)
		switch k.Kind {
		case KeywordOptOut, KeywordOptIn, KeywordHelp, KeywordReview, KeywordReply:
		default:
			t.Fatalf("kind %q", k.Kind)
		}
		// Exactly STOP, however it is dressed, is always an opt-out.
		if k := ParseKeyword(" "+strings.ToLower(body)+"STOP"+".", cfg); strings.TrimSpace(body) == "" && k.Kind != KeywordOptOut {
			t.Fatalf("%q: %s", body, k.Kind)
		}
	})
}
