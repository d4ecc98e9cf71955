package nudge

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Webhook event types a subscription may choose (CRM write-back).
const (
	WebhookMessageSent         = "message.sent"
	WebhookMessageDelivered    = "message.delivered"
	WebhookMessageFailed       = "message.failed"
	WebhookMessageClicked      = "message.clicked"
	WebhookSMSReplied          = "sms.replied"
	WebhookConsentOptedOut     = "consent.opted_out"
	WebhookEnrollmentConverted = "enrollment.converted"
	WebhookStepPaused          = "step.paused" // an SMS step paused on its opt-out rate (data: nudge.StepPause)
	// From provider callbacks and inbound messages.
	WebhookMessageUndelivered = "message.undelivered" // the provider or carrier could not deliver it (data: the message)
	WebhookEmailBounced       = "email.bounced"       // data: the email.bounced event
	WebhookEmailComplained    = "email.complained"    // data: the email.complained event
	WebhookEmailOpened        = "email.opened"        // data: the email.opened event
	WebhookConsentOptedIn     = "consent.opted_in"    // data: the consent ledger entry
)

// WebhookEvents lists the event types a subscription may choose.
var WebhookEvents = []string{
	WebhookMessageSent, WebhookMessageDelivered, WebhookMessageFailed, WebhookMessageClicked,
	WebhookSMSReplied, WebhookConsentOptedOut, WebhookEnrollmentConverted, WebhookStepPaused,
	WebhookMessageUndelivered, WebhookEmailBounced, WebhookEmailComplained, WebhookEmailOpened, WebhookConsentOptedIn,
}

// WebhookSubscription asks Nudge to POST the chosen events to URL, signed
// with Secret.
type WebhookSubscription struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	// Secret signs the calls (HMAC-SHA256). It is shown once, when the
	// subscription is created; lists leave it empty.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Wants reports whether the subscription chose event type ev.
func (w *WebhookSubscription) Wants(ev string) bool { return slices.Contains(w.Events, ev) }

// WebhookDelivery is one attempt to deliver one event to one subscription.
type WebhookDelivery struct {
	ID             int64     `json:"id"` // made by the store; grows with time
	SubscriptionID string    `json:"subscription_id"`
	EventID        string    `json:"event_id"` // stable across attempts: receivers deduplicate on it
	Event          string    `json:"event"`    // the event type
	Attempt        int       `json:"attempt"`  // 1 for the first call
	StatusCode     int       `json:"status_code,omitempty"`
	OK             bool      `json:"ok"`
	Error          string    `json:"error,omitempty"`
	Duration       int64     `json:"duration_ms"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"` // zero: no retry follows
	At             time.Time `json:"at"`
}

// WebhookDeliveryListParams pages a subscription's delivery log, newest first.
type WebhookDeliveryListParams struct {
	SubscriptionID string
	BeforeID       int64 // 0: from the newest
	Limit          int   // default 100, at most 1000
}

// WebhookStore keeps webhook subscriptions and their delivery log.
type WebhookStore interface {
	// WebhookCreate stores a subscription: EINVALID when ValidateWebhook
	// refuses it, ECONFLICT when its ID is taken.
	WebhookCreate(ctx context.Context, w *WebhookSubscription) error
	// WebhookGet returns a subscription with its secret, or ENOTFOUND.
	WebhookGet(ctx context.Context, id string) (*WebhookSubscription, error)
	// WebhookList returns every subscription, with secrets, oldest first.
	WebhookList(ctx context.Context) ([]*WebhookSubscription, error)
	// WebhookDelete removes a subscription and its delivery log, or
	// returns ENOTFOUND.
	WebhookDelete(ctx context.Context, id string) error
	// WebhookDeliveryLog appends delivery attempts (their IDs are set).
	WebhookDeliveryLog(ctx context.Context, ds []*WebhookDelivery) error
	// WebhookDeliveryList pages a subscription's delivery log, newest first.
	WebhookDeliveryList(ctx context.Context, p *WebhookDeliveryListParams) ([]*WebhookDelivery, error)

	// WebhookEnqueue stores events to deliver, at their AvailableAt (their
	// IDs are set). One already pending for the same subscription and
	// event is kept as it is; one of a deleted subscription is dropped.
	WebhookEnqueue(ctx context.Context, ps []*WebhookPending, now time.Time) error
	// WebhookClaim claims up to limit pending deliveries whose AvailableAt
	// is at or before now and that are not claimed (or whose claim
	// expired), in AvailableAt order, for lease (SKIP LOCKED on
	// PostgreSQL), with their subscription's URL and secret.
	WebhookClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*WebhookPending, error)
	// WebhookSettle ends claims: a done delivery is removed; another is
	// released for its next attempt at AvailableAt with Attempt made.
	WebhookSettle(ctx context.Context, ss []*WebhookSettle, now time.Time) error
}

// WebhookPending is an event waiting for delivery to one subscription.
// Pending deliveries live in the store, not in memory, so a restart loses
// none: what was claimed when a process stopped is claimed again when the
// claim expires (receivers deduplicate on EventID).
type WebhookPending struct {
	ID             int64
	SubscriptionID string
	EventID        string
	Event          string
	Body           []byte // the signed JSON payload
	Attempt        int    // attempts made so far
	AvailableAt    time.Time
	CreatedAt      time.Time
	// Set by WebhookClaim from the subscription.
	URL, Secret string
}

// WebhookSettle is the outcome of one attempt at a pending delivery.
type WebhookSettle struct {
	ID          int64
	Done        bool      // delivered, or given up: remove it
	Attempt     int       // attempts made, when not done
	AvailableAt time.Time // the next attempt, when not done
}

// ValidateWebhook checks the fields WebhookCreate requires: an ID, an
// absolute http or https URL, a secret, and at least one known event type.
// Where the URL may point (no private addresses) is checked when it is
// called, not here: a name can resolve elsewhere tomorrow.
func ValidateWebhook(w *WebhookSubscription) error {
	if w == nil {
		return Errorf(EINVALID, "webhook subscription required")
	}
	if w.ID == "" {
		return FieldErrorf("id", "required")
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return FieldErrorf("url", "want an absolute http or https URL")
	}
	if w.Secret == "" {
		return FieldErrorf("secret", "required")
	}
	if len(w.Events) == 0 {
		return FieldErrorf("events", "choose at least one of %v", WebhookEvents)
	}
	for i, ev := range w.Events {
		if !slices.Contains(WebhookEvents, ev) {
			return FieldErrorf(fmt.Sprintf("events[%d]", i), "unknown event %q; want one of %v", ev, WebhookEvents)
		}
	}
	return nil
}
