package nudge

import (
	"context"
	"time"
)

// Outbound is a rendered message ready for a provider: what a Sender needs
// and nothing more. Delivery workers build it from a Message, the contact and
// the rendered template.
type Outbound struct {
	MessageID      string // the outbox message's ID
	IdempotencyKey string // sent to providers that support one
	Channel        string
	To             string // E.164 phone number or email address
	From           string // sender: a phone number, messaging service or email address
	Subject        string // email
	HTML           string // email
	Text           string // email text part, or the SMS body
	// Headers are extra email headers (List-Unsubscribe, …).
	Headers map[string]string
	// StatusCallback is the URL the provider calls back with delivery
	// reports, when it supports one.
	StatusCallback string
}

// SendResult is a provider's answer to a send that it accepted.
type SendResult struct {
	ProviderID string // Twilio's SID, the SMTP Message-ID, Kannel's id…
	Status     string // MessageSent, or MessageDelivered where the provider says so at once
	Segments   int    // SMS segments billed, when known
}

// SendError is a provider's refusal, classified so the worker knows whether
// to retry. Code is the provider's own (Twilio "21610", SMTP "550").
type SendError struct {
	Code       string
	Message    string
	Permanent  bool          // retrying cannot help (invalid number, opted out, 5xx SMTP)
	RetryAfter time.Duration // when the provider said how long to wait (429)
	// OptedOut: the provider reports the recipient opted out (Twilio 21610).
	OptedOut bool
}

func (e *SendError) Error() string {
	return "provider error " + e.Code + ": " + e.Message
}

// Sender hands messages of one channel to one provider.
//
// Send returns a *SendError when the provider answered with a refusal, and
// another error when the outcome is unknown (a timeout, a dropped
// connection): the provider may or may not have accepted the message.
type Sender interface {
	Channel() string
	Send(ctx context.Context, m *Outbound) (*SendResult, error)
}
