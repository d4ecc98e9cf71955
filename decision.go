package nudge

import "time"

// Decision outcomes: what one evaluation decided.
const (
	OutcomeEntered    = "entered"
	OutcomeSent       = "sent"     // a message went to the outbox
	OutcomeDeferred   = "deferred" // a send waits (until Details["until"])
	OutcomeSkipped    = "skipped"  // a step did nothing (the reason says which rule)
	OutcomeWaiting    = "waiting"
	OutcomeBranched   = "branched"
	OutcomeConverted  = "converted"
	OutcomeExited     = "exited"
	OutcomeHeldOut    = "held_out"
	OutcomeCompleted  = "completed"
	OutcomeUpdated    = "updated" // update_contact
	OutcomeNotEntered = "not_entered"
)

// Decision is one record of the decision log: the outcome of one evaluation,
// with a stable reason code and a sentence a marketer can read.
type Decision struct {
	ID            int64          `json:"id"`
	At            time.Time      `json:"at"`
	ContactID     string         `json:"contact_id"`
	JourneyID     string         `json:"journey_id"`
	Version       int64          `json:"version"`
	EnrollmentID  string         `json:"enrollment_id,omitempty"`
	StepID        string         `json:"step_id,omitempty"`
	Channel       string         `json:"channel,omitempty"`
	Outcome       string         `json:"outcome"`
	Reason        string         `json:"reason"`  // stable code, e.g. "goal_met", "wait_timer"
	Message       string         `json:"message"` // a sentence for people
	Details       map[string]any `json:"details,omitempty"`
	PolicyVersion int64          `json:"policy_version,omitempty"`
}

// DecisionListParams pages the decision log in ID order.
type DecisionListParams struct {
	ContactID    string
	JourneyID    string
	EnrollmentID string
	AfterID      int64
	Limit        int // default 100, at most 10000
}
