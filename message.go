package nudge

import "time"

// Message statuses. The engine creates messages queued; delivery moves them on.
const (
	MessageQueued    = "queued"
	MessageCancelled = "cancelled" // its enrollment converted or exited before delivery
	MessageSending   = "sending"
	MessageSent      = "sent"
	MessageDelivered = "delivered"
	MessageFailed    = "failed"
)

// Message channels beyond ChannelEmail and ChannelSMS: a webhook step's call
// is delivered from the outbox too.
const ChannelWebhook = "webhook"

// Message is one outbound email, SMS or webhook call in the outbox. The
// engine writes it in the same transaction as the decision that sent it.
type Message struct {
	ID             string         `json:"id"` // made by the engine; sorts in creation order
	EnrollmentID   string         `json:"enrollment_id"`
	ContactID      string         `json:"contact_id"`
	JourneyID      string         `json:"journey_id"`
	Version        int64          `json:"version"`
	StepID         string         `json:"step_id"`
	Channel        string         `json:"channel"`
	Template       string         `json:"template,omitempty"`
	Purpose        string         `json:"purpose,omitempty"`
	Status         string         `json:"status"`
	IdempotencyKey string         `json:"idempotency_key"` // unique: enrollment and step
	AvailableAt    time.Time      `json:"available_at"`    // not delivered before
	Details        map[string]any `json:"details,omitempty"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

// MessageListParams pages the outbox, ordered by ID (engine IDs sort in
// creation order).
type MessageListParams struct {
	ContactID    string
	EnrollmentID string
	Status       string
	AfterID      string
	Limit        int // default 100, at most 10000
}
