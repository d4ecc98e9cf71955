package nudge

import (
	"context"
	"time"
)

// LinkUnsubscribe is the Channel of a Link that is a one-click unsubscribe
// token (RFC 8058) rather than a tracked link.
const LinkUnsubscribe = "unsubscribe"

// Link is a tracked short link (/c/{code}) that redirects to URL, or, with
// Channel LinkUnsubscribe, an unsubscribe token (/u/{code}) bound to a
// contact and the email address the message went to.
type Link struct {
	Code      string    `json:"code"`
	URL       string    `json:"url,omitempty"` // the original; "" for an unsubscribe token
	MessageID string    `json:"message_id"`
	ContactID string    `json:"contact_id"`
	JourneyID string    `json:"journey_id,omitempty"`
	StepID    string    `json:"step_id,omitempty"`
	Channel   string    `json:"channel"` // the message's channel (email, sms) or LinkUnsubscribe
	CreatedAt time.Time `json:"created_at"`
	// Address is, for an unsubscribe token, the email address the message
	// went to. LinkCreate keeps only its keyed hash (AddressHash); LinkGet
	// leaves it empty.
	Address string `json:"-"`
	// AddressCurrent (set by LinkGet for an unsubscribe token): the contact
	// exists and its email address is still the one the token was sent to.
	// A token sent to an old address must not opt out the new one.
	AddressCurrent bool `json:"-"`
}

// LinkStore keeps tracked links and unsubscribe tokens.
type LinkStore interface {
	// LinkCreate stores links in one transaction (all or none): EINVALID
	// when one lacks a code or channel (or a URL, unless it is an
	// unsubscribe token, which needs an Address instead), ECONFLICT when a
	// code is taken.
	LinkCreate(ctx context.Context, links []*Link) error
	// LinkGet returns the link or token of a code, or ENOTFOUND.
	LinkGet(ctx context.Context, code string) (*Link, error)
}

// ValidateLink checks the fields LinkCreate requires.
func ValidateLink(l *Link) error {
	switch {
	case l == nil:
		return Errorf(EINVALID, "link required")
	case l.Code == "":
		return FieldErrorf("code", "required")
	case l.Channel == "":
		return FieldErrorf("channel", "required")
	case l.Channel == LinkUnsubscribe && l.Address == "":
		return FieldErrorf("address", "required for an unsubscribe token")
	case l.Channel != LinkUnsubscribe && l.URL == "":
		return FieldErrorf("url", "required")
	}
	return nil
}
