package policy

import (
	"time"

	"github.com/nudge/nudge"
)

// Facts are everything Evaluate needs about one send, gathered by the
// engine (in bulk, for a batch of due sends) before it asks. Evaluate reads
// nothing else: no store, no clock.
type Facts struct {
	Channel string // nudge.ChannelSMS or nudge.ChannelEmail
	// Purpose is the step's SMS purpose (journey.Purpose: reminder,
	// decision_point, …); "" for email. "transactional" makes the message
	// transactional; every other purpose is marketing.
	Purpose  string
	Journey  string // journey id
	Priority int    // the journey's priority when the policy does not list it
	Step     string // step id
	Template string // template name, for sentences
	// MessageKey identifies the message for the jitter hash (the
	// enrollment id and step id); "" uses journey, step and template.
	MessageKey string

	// Caps are the step's own caps, combined with the policy's (they can
	// only tighten). OnCap is the step's choice when capped or beaten on
	// priority: OnCapSkip or OnCapDefer; "" takes the policy's.
	Caps  []Cap
	OnCap string

	// Expires is the step's expires time; Deadline the purpose's (the
	// webinar's start for a reminder). Zero: none. A message that cannot go
	// before the earlier of them is skipped, never sent late.
	Expires  time.Time
	Deadline time.Time

	Contact *nudge.Contact
	// Consent is the contact's current consent states (ConsentList);
	// ConsentErr, when the lookup failed, stops the send (no fail-open).
	Consent    []*nudge.ConsentState
	ConsentErr error
	// Suppressions are the suppression entries matching the contact, its
	// email address or its phone number.
	Suppressions []Suppression
	// Recent are the contact's messages sent or in flight (queued,
	// sending) at least as far back as the longest cap window.
	Recent []Sent
	// Engagement are the contact's engagement events (email.opened,
	// email.clicked, page.viewed, …) within the engagement window.
	Engagement []Engaged
	// Competing are other journeys' messages pending for the contact on
	// any channel: deferred or due, not yet sent.
	Competing []Pending
	// Paused is the pause that holds for the step (an SMS step paused on
	// its opt-out rate), nil when it may send.
	Paused *nudge.StepPause
}

// Suppression kinds.
const (
	SuppressDoNotContact   = "do_not_contact"   // the workspace list
	SuppressHardBounce     = "hard_bounce"      // email
	SuppressComplaint      = "complaint"        // email spam complaint
	SuppressProviderOptOut = "provider_opt_out" // the SMS provider reports the number opted out
	SuppressUnreachable    = "unreachable"      // the SMS provider reports the number unreachable
	SuppressErased         = "erased"           // the contact was erased
)

// Suppression is one entry of the suppression list that matches the
// contact. Channel "" suppresses the contact on every channel.
type Suppression struct {
	Channel string
	Address string // the email address or phone number; "" for the contact
	Kind    string // Suppress…
	Source  string // where it came from: "admin", "twilio", "smtp", …
	At      time.Time
}

// Sent is one of the contact's recent messages, sent or in flight.
type Sent struct {
	ID            string
	At            time.Time // when it was sent, or is due to be
	Channel       string
	Journey       string
	Template      string
	Transactional bool
	InFlight      bool // queued or sending, not yet sent
}

// Engaged is one engagement event.
type Engaged struct {
	Event string // email.opened, email.clicked, page.viewed, …
	At    time.Time
}

// Pending is another journey's message waiting for the same contact.
type Pending struct {
	Journey  string
	Priority int // used when the policy does not list the journey
	Channel  string
	Template string
	At       time.Time // when it wants to go (its due or deferral time)
}

// Transactional reports whether the send is a transactional message.
func (f *Facts) Transactional() bool { return f.Purpose == PurposeTransactional }

// PurposeTransactional is the SMS purpose (journey.PurposeTransactional)
// that makes a message transactional.
const PurposeTransactional = "transactional"

// consentPurpose is the consent purpose the send needs.
func (f *Facts) consentPurpose() string {
	if f.Transactional() {
		return nudge.PurposeTransactional
	}
	return nudge.PurposeMarketing
}
