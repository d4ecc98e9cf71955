package policy

import (
	"slices"
	"strings"
	"unicode"

	"github.com/nudge/nudge/internal/yamlnode"
)

// What an inbound SMS is, for consent.
const (
	KeywordOptOut = "opt_out" // record SMS opted_out (evidence: the keyword) and send Reply once
	KeywordOptIn  = "opt_in"  // record SMS opted_in and send Reply
	KeywordHelp   = "help"    // send Reply (the help text); consent is unchanged
	KeywordReview = "review"  // not a keyword but reads as a revocation: flag it for a person
	KeywordReply  = "reply"   // anything else: an sms.replied event journeys can wait for
)

// Keyword is what ParseKeyword made of an inbound SMS.
type Keyword struct {
	Kind     string // Keyword…
	Word     string // the keyword as configured ("STOP"), or the phrase that reads as a revocation
	Language string // the language whose lists matched, for the reply
	// Reply is the text to answer with ("" for none): the opt-out
	// confirmation (no marketing content), the opt-in confirmation or the
	// help text, with {program}, {frequency} and {support} filled in.
	Reply string
	// Review is set when a person should read the message: a revocation in
	// words ("please stop texting me") or a near miss ("stopp"). With
	// KeywordConfig.RevocationOptOut such a message is also an opt-out.
	Review bool
}

// KeywordConfig holds the keyword lists and reply texts, per language.
type KeywordConfig struct {
	Program   string // "Acme Events"
	Frequency string // "Up to 4 msgs/month"
	Support   string // "help@acme.example or 1-800-555-0100"
	// RevocationOptOut makes a message that reads as a revocation an
	// opt-out (still flagged for review); by default it is only flagged.
	RevocationOptOut bool
	// Languages are tried in order; the first whose list holds the word
	// answers in its language.
	Languages []Language
}

// Language is one language's keywords and replies. Keywords are matched as
// single words, case-insensitive, with punctuation, accents and full-width
// forms ignored ("Stop.", " stop ", "ＳＴＯＰ", "arrêt").
type Language struct {
	Code                string
	OptOut, OptIn, Help []string
	// ReviewWords flag a longer message holding one of them ("please
	// STOP"); Revocations are phrases that do ("stop texting", "remove
	// me"), matched on whole words.
	ReviewWords, Revocations []string
	// Replies, with {program}, {frequency} and {support} replaced.
	OptOutReply, OptInReply, HelpReply string
}

// DefaultKeywords are the shipped lists: the CTIA/carrier keywords and
// those AWS honours too (ARRET, OPT-OUT, REMOVE, TD), with English and
// French replies.
func DefaultKeywords() KeywordConfig {
	return KeywordConfig{
		Program:   "Nudge",
		Frequency: "Msg frequency varies",
		Support:   "reply HELP",
		Languages: []Language{{
			Code:        "en",
			OptOut:      []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", "OPT-OUT", "REMOVE", "TD"},
			OptIn:       []string{"START", "YES", "UNSTOP"},
			Help:        []string{"HELP", "INFO"},
			ReviewWords: []string{"STOP", "STOPALL", "UNSUBSCRIBE", "OPTOUT", "REVOKE"},
			Revocations: []string{
				"stop texting", "stop text", "stop messaging", "stop sending", "stop contacting", "stop these", "stop this",
				"dont text", "dont message", "dont contact", "dont send", "do not text", "do not message", "do not contact", "do not send",
				"remove me", "take me off", "opt me out", "unsubscribe me", "no more texts", "no more messages", "leave me alone", "wrong number",
			},
			OptOutReply: "{program}: You are unsubscribed and will receive no more messages. Reply START to resubscribe.",
			OptInReply:  "{program}: You are subscribed. {frequency}. Msg & data rates may apply. Reply HELP for help, STOP to opt out.",
			HelpReply:   "{program}: {frequency}. Msg & data rates may apply. Reply STOP to opt out. Support: {support}.",
		}, {
			Code:        "fr",
			OptOut:      []string{"ARRET", "STOP"},
			OptIn:       []string{"START"},
			Help:        []string{"AIDE"},
			ReviewWords: []string{"ARRET"},
			Revocations: []string{"arretez", "ne plus recevoir", "desinscrire", "desabonner"},
			OptOutReply: "{program} : vous êtes désinscrit et ne recevrez plus de messages. Répondez START pour vous réinscrire.",
			OptInReply:  "{program} : vous êtes inscrit. {frequency}. Frais de messagerie selon opérateur. Répondez AIDE pour l'aide, ARRET pour vous désinscrire.",
			HelpReply:   "{program} : {frequency}. Frais de messagerie selon opérateur. Répondez ARRET pour vous désinscrire. Aide : {support}.",
		}},
	}
}

// ParseKeyword reads an inbound SMS body. A message that is exactly one
// opt-out, opt-in or help keyword (or an opt-out keyword written in two
// words: "STOP ALL", "OPT OUT") is that keyword; a longer one that reads as
// a revocation, or a near miss of an opt-out keyword ("stopp"), is flagged
// for review; anything else is a reply.
func ParseKeyword(body string, cfg KeywordConfig) Keyword {
	words := keywordWords(body)
	if len(words) == 0 {
		return Keyword{Kind: KeywordReply}
	}
	joined := strings.Join(words, "")
	for i := range cfg.Languages {
		l := &cfg.Languages[i]
		if len(words) == 1 {
			if w, ok := match(words[0], l.OptIn); ok {
				return cfg.reply(Keyword{Kind: KeywordOptIn, Word: w, Language: l.Code}, l.OptInReply)
			}
			if w, ok := match(words[0], l.Help); ok {
				return cfg.reply(Keyword{Kind: KeywordHelp, Word: w, Language: l.Code}, l.HelpReply)
			}
		}
		if w, ok := match(joined, l.OptOut); ok && len(words) <= 2 {
			return cfg.reply(Keyword{Kind: KeywordOptOut, Word: w, Language: l.Code}, l.OptOutReply)
		}
	}
	for i := range cfg.Languages {
		l := &cfg.Languages[i]
		why := ""
		if len(words) == 1 {
			if w, ok := nearMiss(words[0], l.OptOut); ok {
				why = w
			}
		} else if w, ok := match1(words, l.ReviewWords); ok {
			why = w
		}
		if why == "" {
			why = revocation(words, l.Revocations)
		}
		if why == "" {
			continue
		}
		k := Keyword{Kind: KeywordReview, Word: why, Language: l.Code, Review: true}
		if cfg.RevocationOptOut {
			k.Kind = KeywordOptOut
			return cfg.reply(k, l.OptOutReply)
		}
		return k
	}
	return Keyword{Kind: KeywordReply}
}

func (cfg *KeywordConfig) reply(k Keyword, text string) Keyword {
	k.Reply = strings.NewReplacer("{program}", cfg.Program, "{frequency}", cfg.Frequency, "{support}", cfg.Support).Replace(text)
	return k
}

// match finds w among the keywords, compared as keywordWords makes them.
func match(w string, keywords []string) (string, bool) {
	for _, k := range keywords {
		if kw := keywordWords(k); len(kw) > 0 && strings.Join(kw, "") == w {
			return k, true
		}
	}
	return "", false
}

func match1(words, keywords []string) (string, bool) {
	for _, w := range words {
		if k, ok := match(w, keywords); ok {
			return k, true
		}
	}
	return "", false
}

// nearMiss finds an opt-out keyword of at least four letters that w misses
// by one letter, or by swapping two: "STOPP", "SOTP", "UNSUBSCRIBR" (words
// of four letters or more: "TOP" is a word).
func nearMiss(w string, keywords []string) (string, bool) {
	for _, k := range keywords {
		kw := strings.Join(keywordWords(k), "")
		if len(kw) < 4 || len(w) < 4 || kw == w {
			continue
		}
		if yamlnode.Distance(w, kw) <= 1 || len(w) == len(kw) && sortedLetters(w) == sortedLetters(kw) && yamlnode.Distance(w, kw) <= 2 {
			return k, true
		}
	}
	return "", false
}

func sortedLetters(s string) string {
	b := []byte(s)
	slices.Sort(b)
	return string(b)
}

// revocation finds a phrase among words (whole words, in order).
func revocation(words []string, phrases []string) string {
	for _, ph := range phrases {
		pw := keywordWords(ph)
		if len(pw) == 0 || len(pw) > len(words) {
			continue
		}
		for i := 0; i+len(pw) <= len(words); i++ {
			if slices.Equal(words[i:i+len(pw)], pw) {
				return ph
			}
		}
	}
	return ""
}

// keywordWords splits a message into upper-case words of letters and
// digits: full-width forms become ASCII, accents are dropped, apostrophes
// and hyphens join ("don't" → DONT, "opt-out" → OPTOUT), other punctuation,
// symbols and spaces separate, and invisible characters vanish.
func keywordWords(s string) []string {
	var words []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		if r >= 0xFF01 && r <= 0xFF5E {
			r -= 0xFEE0 // full-width ASCII
		}
		switch {
		case r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			b.WriteRune(unicode.ToUpper(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteString(foldAccent(unicode.ToUpper(r)))
		case unicode.Is(unicode.Mn, r), unicode.Is(unicode.Cf, r), r == '\'', r == '’', r == '-', r == '‐', r == '‑':
			// combining marks, zero-width characters, joiners
		default:
			flush()
		}
	}
	flush()
	return words
}

// foldAccent drops the accent of a Latin upper-case letter.
func foldAccent(r rune) string {
	if i := slices.Index(accented, r); i >= 0 {
		return plain[i : i+1]
	}
	return string(r)
}

// accented and plain line up letter by letter.
var (
	accented = []rune("ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝŸ")
	plain    = "AAAAAACEEEEIIIINOOOOOOUUUUYY"
)
