package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/nudge/nudge"
)

// ValidateSignature reports whether signature, the X-Twilio-Signature
// header, is Twilio's signature of a form POST to rawURL (the full URL
// Twilio requested: scheme, host, path and query) with params. It tries the
// URL as given and with its default port (:443, :80) added or removed,
// because Twilio signs whichever form it was configured with and proxies
// differ in what they pass on. Comparisons take constant time.
func ValidateSignature(authToken, rawURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	ok := false
	for _, u := range urlForms(rawURL) {
		// No early return: every form is checked, so timing says nothing
		// about which one matched.
		if subtle.ConstantTimeCompare([]byte(sign(authToken, u, params)), []byte(signature)) == 1 {
			ok = true
		}
	}
	return ok
}

// Sign returns the X-Twilio-Signature Twilio would send for a form POST of
// params to rawURL. Tests of webhook handlers use it to sign requests.
func Sign(authToken, rawURL string, params url.Values) string {
	return sign(authToken, rawURL, params)
}

func sign(authToken, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		values := slices.Clone(params[name])
		slices.Sort(values)
		for _, v := range values {
			b.WriteString(name)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// urlForms returns rawURL and, for http and https, the same URL with the
// scheme's default port toggled.
func urlForms(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return []string{rawURL}
	}
	def := map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
	if def == "" {
		return []string{rawURL}
	}
	alt := *u
	switch u.Port() {
	case def:
		alt.Host = u.Hostname()
		if strings.Contains(alt.Host, ":") { // IPv6 literal
			alt.Host = "[" + alt.Host + "]"
		}
	case "":
		alt.Host = u.Host + ":" + def
	default:
		return []string{rawURL}
	}
	return []string{rawURL, alt.String()}
}

// StatusCallback is a delivery report Twilio POSTs to a message's
// StatusCallback URL. Callbacks can repeat and arrive out of order; Status
// is Twilio's own word (queued, sent, delivered, undelivered, failed, …).
type StatusCallback struct {
	MessageSID string
	Status     string
	ErrorCode  string // "" when Twilio reports none
	To         string
	From       string
	AccountSID string
}

// ParseStatusCallback reads a status callback's form. It returns an
// EINVALID *nudge.Error when MessageSid or MessageStatus is missing.
func ParseStatusCallback(form url.Values) (*StatusCallback, error) {
	c := &StatusCallback{
		MessageSID: strings.TrimSpace(form.Get("MessageSid")),
		Status:     strings.ToLower(strings.TrimSpace(form.Get("MessageStatus"))),
		ErrorCode:  strings.TrimSpace(form.Get("ErrorCode")),
		To:         form.Get("To"),
		From:       form.Get("From"),
		AccountSID: form.Get("AccountSid"),
	}
	if c.MessageSID == "" {
		return nil, nudge.FieldErrorf("MessageSid", "is required")
	}
	if c.Status == "" {
		return nil, nudge.FieldErrorf("MessageStatus", "is required")
	}
	if c.ErrorCode == "0" {
		c.ErrorCode = ""
	}
	return c, nil
}

// Inbound is a message a contact sent to one of the account's numbers.
type Inbound struct {
	MessageSID          string
	AccountSID          string
	MessagingServiceSID string
	From                string
	To                  string
	Body                string
	NumMedia            int
	NumSegments         int
	// OptOutType is set when Twilio matched an opt-out keyword itself:
	// STOP, START or HELP.
	OptOutType string
}

// ParseInbound reads an inbound message's form. It returns an EINVALID
// *nudge.Error when MessageSid or From is missing or a count is not a
// number.
func ParseInbound(form url.Values) (*Inbound, error) {
	in := &Inbound{
		MessageSID:          strings.TrimSpace(form.Get("MessageSid")),
		AccountSID:          form.Get("AccountSid"),
		MessagingServiceSID: form.Get("MessagingServiceSid"),
		From:                strings.TrimSpace(form.Get("From")),
		To:                  strings.TrimSpace(form.Get("To")),
		Body:                form.Get("Body"),
		OptOutType:          strings.ToUpper(strings.TrimSpace(form.Get("OptOutType"))),
	}
	if in.MessageSID == "" {
		return nil, nudge.FieldErrorf("MessageSid", "is required")
	}
	if in.From == "" {
		return nil, nudge.FieldErrorf("From", "is required")
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"NumMedia", &in.NumMedia}, {"NumSegments", &in.NumSegments}} {
		v := strings.TrimSpace(form.Get(f.name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, nudge.FieldErrorf(f.name, "%q is not a count", v)
		}
		*f.dst = n
	}
	return in, nil
}
