// Package link turns the links of outgoing messages into signal: it
// rewrites URLs in SMS text and email HTML to short tracked links on
// Nudge's own host (/c/{code}), and adds the one-click unsubscribe headers
// of RFC 8058 (/u/{token}) to marketing email. The api package serves both
// paths; the links themselves are kept behind nudge.LinkStore.
package link

import (
	"crypto/rand"
	"html"
	"regexp"
	"strings"
)

// CodeLen is the length of a link code: 11 base62 characters, 65.5 bits,
// short enough that a tracked link costs an SMS few characters.
const CodeLen = 11

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewCode returns a random link code of CodeLen base62 characters from
// crypto/rand.
func NewCode() string {
	b := make([]byte, CodeLen)
	buf := make([]byte, 2*CodeLen)
	for n := 0; n < CodeLen; {
		rand.Read(buf) // never fails (crypto/rand since Go 1.24)
		for _, c := range buf {
			// 248 = 4·62: rejecting the rest keeps every character equally likely.
			if c < 248 && n < CodeLen {
				b[n] = base62[c%62]
				n++
			}
		}
	}
	return string(b)
}

// NewToken returns an unsubscribe token: 26 base32 characters, 130 bits
// from crypto/rand.
func NewToken() string { return rand.Text() }

// ValidCode reports whether s looks like a code or token this package
// makes: a cheap check before a database lookup.
func ValidCode(s string) bool {
	if len(s) < CodeLen || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(base62, rune(s[i])) {
			return false
		}
	}
	return true
}

var (
	// textURL finds http(s) URLs in plain text: up to whitespace, angle
	// brackets or quotes. Trailing punctuation is trimmed afterwards.
	textURL = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'` + "`" + `]+`)
	// hrefAttr finds href attributes with a quoted value.
	hrefAttr = regexp.MustCompile(`(?i)(\shref\s*=\s*)("[^"]*"|'[^']*')`)
)

// Rewrite replaces the http(s) URLs of text: in plain text (isHTML false)
// every URL, in HTML only href attribute values. mint returns the
// replacement of a URL (its short link), or "" to leave it as it is. A
// URL's trailing punctuation ("see https://x.io/a?b=1.") stays outside it,
// and a closing parenthesis too unless the URL opened one.
func Rewrite(text string, isHTML bool, mint func(url string) (short string)) string {
	if isHTML {
		return hrefAttr.ReplaceAllStringFunc(text, func(attr string) string {
			m := hrefAttr.FindStringSubmatch(attr)
			quoted := m[2]
			q := quoted[:1]
			raw := strings.TrimSpace(html.UnescapeString(quoted[1 : len(quoted)-1]))
			if !isHTTP(raw) {
				return attr
			}
			short := mint(raw)
			if short == "" {
				return attr
			}
			return m[1] + q + html.EscapeString(short) + q
		})
	}
	return textURL.ReplaceAllStringFunc(text, func(u string) string {
		u, rest := trimURL(u)
		if len(u) <= len("https://") {
			return u + rest
		}
		short := mint(u)
		if short == "" {
			return u + rest
		}
		return short + rest
	})
}

func isHTTP(s string) bool {
	l := strings.ToLower(s)
	return (strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")) && len(s) > len("https://")
}

// trimURL splits trailing punctuation off a URL found in text.
func trimURL(u string) (url, rest string) {
	end := len(u)
	for end > 0 {
		c := u[end-1]
		if strings.IndexByte(".,;:!?*", c) >= 0 {
			end--
			continue
		}
		if c == ')' && strings.Count(u[:end], "(") < strings.Count(u[:end], ")") {
			end--
			continue
		}
		if c == ']' && strings.Count(u[:end], "[") < strings.Count(u[:end], "]") {
			end--
			continue
		}
		break
	}
	return u[:end], u[end:]
}
