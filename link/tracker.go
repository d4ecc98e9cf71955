package link

import (
	"cmp"
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/nudge/nudge"
)

// Paths on PublicURL that the api package serves.
const (
	ClickPath       = "/c/"
	UnsubscribePath = "/u/"
)

// Config configures a Tracker.
type Config struct {
	Store     nudge.LinkStore // required
	Clock     nudge.Clock     // default nudge.SystemClock
	PublicURL string          // required: https://nudge.example.com
	// EmailText also rewrites the URLs of an email's text part (its HTML
	// hrefs always are).
	EmailText bool
	// NoEmailLinks leaves email links as they are (SMS links are always
	// tracked).
	NoEmailLinks bool
	// UnsubscribeMailto, when set, is the address of the List-Unsubscribe
	// mailto: alternative (RFC 2369), beside the one-click HTTPS URL.
	UnsubscribeMailto string
	// CheckSMS, when set, checks an SMS body after its links were rewritten
	// (the worker lints the body before: a short link can be longer than
	// the URL it replaces and add a segment). An error fails the message.
	CheckSMS func(text string) error
}

// Tracker prepares outgoing messages: tracked links, and the one-click
// unsubscribe headers of marketing email. Its Prepare is a
// delivery.Config.Prepare.
type Tracker struct {
	cfg  Config
	base string
}

// NewTracker returns a Tracker, or an EINVALID error.
func NewTracker(cfg Config) (*Tracker, error) {
	if cfg.Store == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "link: a store is required")
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "link: the public URL %q is not an http(s) URL", cfg.PublicURL)
	}
	if cfg.UnsubscribeMailto != "" {
		if _, err := mail.ParseAddress(cfg.UnsubscribeMailto); err != nil {
			return nil, nudge.Errorf(nudge.EINVALID, "link: unsubscribe mailto %q: %v", cfg.UnsubscribeMailto, err)
		}
	}
	cfg.Clock = cmp.Or[nudge.Clock](cfg.Clock, nudge.SystemClock{})
	return &Tracker{cfg: cfg, base: strings.TrimRight(cfg.PublicURL, "/")}, nil
}

// ShortURL is the tracked link of a code.
func (t *Tracker) ShortURL(code string) string { return t.base + ClickPath + code }

// UnsubscribeURL is the one-click URL of a token.
func (t *Tracker) UnsubscribeURL(token string) string { return t.base + UnsubscribePath + token }

// Prepare rewrites the links of an SMS body, or of an email's HTML (and
// text, if configured), and adds List-Unsubscribe and
// List-Unsubscribe-Post to marketing email (every email whose purpose is
// not transactional). The links and the token are stored in one
// LinkCreate before the message leaves: a click can never arrive for a
// link Nudge does not know. A retried message gets new codes; the old ones
// keep working.
func (t *Tracker) Prepare(ctx context.Context, m *nudge.Message, c *nudge.Contact, o *nudge.Outbound) error {
	now := t.cfg.Clock.Now().UTC()
	var links []*nudge.Link
	mint := func(u string) string {
		if strings.HasPrefix(u, t.base+"/") {
			return "" // already ours (an unsubscribe link in the body)
		}
		l := &nudge.Link{Code: NewCode(), URL: u, MessageID: m.ID, ContactID: m.ContactID,
			JourneyID: m.JourneyID, StepID: m.StepID, Channel: m.Channel, CreatedAt: now}
		links = append(links, l)
		return t.ShortURL(l.Code)
	}
	switch m.Channel {
	case nudge.ChannelSMS:
		o.Text = Rewrite(o.Text, false, mint)
		if t.cfg.CheckSMS != nil && len(links) > 0 {
			if err := t.cfg.CheckSMS(o.Text); err != nil {
				return fmt.Errorf("link: the SMS with tracked links: %w", err)
			}
		}
	case nudge.ChannelEmail:
		if !t.cfg.NoEmailLinks {
			o.HTML = Rewrite(o.HTML, true, mint)
			if t.cfg.EmailText {
				o.Text = Rewrite(o.Text, false, mint)
			}
		}
		if m.Purpose != nudge.PurposeTransactional && o.To != "" {
			tok := &nudge.Link{Code: NewToken(), MessageID: m.ID, ContactID: m.ContactID, JourneyID: m.JourneyID,
				StepID: m.StepID, Channel: nudge.LinkUnsubscribe, Address: o.To, CreatedAt: now}
			links = append(links, tok)
			if o.Headers == nil {
				o.Headers = map[string]string{}
			}
			v := "<" + t.UnsubscribeURL(tok.Code) + ">"
			if t.cfg.UnsubscribeMailto != "" {
				v += ", <mailto:" + t.cfg.UnsubscribeMailto + "?subject=unsubscribe>"
			}
			o.Headers["List-Unsubscribe"] = v
			o.Headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
		}
	}
	if len(links) == 0 {
		return nil
	}
	if err := t.cfg.Store.LinkCreate(ctx, links); err != nil {
		return fmt.Errorf("link: store %d links: %w", len(links), err)
	}
	return nil
}
