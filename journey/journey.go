package journey

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// Journey is a parsed, validated journey definition. Parse returns it only
// when the file has no problem; its expressions are compiled and its step
// references resolved. A Journey is immutable and safe for concurrent use.
type Journey struct {
	ID          string
	Name        string
	Description string

	Trigger Trigger
	// Entry is checked when a contact would enter; nil lets everyone in.
	Entry *Expr
	// Key, when set, is a string expression over contact and event: each
	// distinct key is its own enrollment (one per webinar). Nil: at most one
	// live enrollment per contact.
	Key     *Expr
	Reentry Reentry
	// Holdout is the percentage (0..100) of entrants held out: they go
	// through the journey's logic but nothing is sent to them.
	Holdout int
	// Priority decides between journeys that want to message the same
	// contact within a cap window: higher wins (default 0). The workspace
	// policy's priorities, when they list the journey, take precedence.
	Priority int
	// Policy tightens the workspace policy for every send of the journey;
	// nil when the file has no policy block.
	Policy *policy.Override
	// Goal is nil when the journey has none.
	Goal *Goal
	// Exit holds conditions on the contact; any one true ends the enrollment
	// without conversion.
	Exit []*Expr
	// Steps in file order; Steps[0] is the first step.
	Steps []*Step

	// File is the file name given to Parse; Source its content as parsed.
	File   string
	Source []byte

	byID map[string]*Step
}

// Step returns the step with the given id, or nil.
func (j *Journey) Step(id string) *Step { return j.byID[id] }

// First returns the step an enrollment starts at (the first in the file).
func (j *Journey) First() *Step {
	if len(j.Steps) == 0 {
		return nil
	}
	return j.Steps[0]
}

// Hash is a content fingerprint of the journey: the hex SHA-256 of its
// source. Two files with the same bytes have the same hash, so publishing an
// unchanged file can be recognised and need not make a new version.
func (j *Journey) Hash() string {
	sum := sha256.Sum256(j.Source)
	return hex.EncodeToString(sum[:])
}

// TriggerKind says what makes a contact enter a journey.
type TriggerKind string

const (
	// TriggerEvent: a track event with a given name (and an optional filter).
	TriggerEvent TriggerKind = "event"
	// TriggerAttribute: the contact starts matching a condition.
	TriggerAttribute TriggerKind = "attribute"
	// TriggerDate: a date in the contact's data, plus an offset, reached at a
	// local time of day.
	TriggerDate TriggerKind = "date"
)

// Trigger says when a contact enters. Exactly one of its kinds is set,
// named by Kind.
type Trigger struct {
	Kind TriggerKind
	// Event is the event name (TriggerEvent); Filter an optional bool
	// condition over event and contact.
	Event  string
	Filter *Expr
	// Condition is the bool condition over contact (TriggerAttribute): a
	// contact enters when it changes from not matching to matching.
	Condition *Expr
	// Date is set for TriggerDate.
	Date *DateTrigger
}

// DateTrigger enters a contact on the day Field+Offset, at At in the
// contact's time zone.
type DateTrigger struct {
	// Field is "created_at", "updated_at" or the name of an attribute (as
	// written after "attributes.", if it was) holding a date or timestamp.
	Field string
	// Attribute is true when Field names an attribute.
	Attribute bool
	// Offset is added to the date: -7d is a week before.
	Offset time.Duration
	At     TimeOfDay
}

// TimeOfDay is a local wall-clock time, such as 09:00.
type TimeOfDay struct {
	Hour, Minute int
}

func (t TimeOfDay) String() string {
	return string([]byte{byte('0' + t.Hour/10), byte('0' + t.Hour%10), ':', byte('0' + t.Minute/10), byte('0' + t.Minute%10)})
}

// ReentryKind says whether a contact may go through a journey again.
type ReentryKind string

const (
	// ReentryNever: a contact enters at most once (per key, with a key).
	ReentryNever ReentryKind = "never"
	// ReentryAlways: a contact may enter again once the previous enrollment ended.
	ReentryAlways ReentryKind = "always"
	// ReentryAfter: a contact may enter again After the previous enrollment ended.
	ReentryAfter ReentryKind = "after"
)

// Reentry is the re-entry policy. The default is never.
type Reentry struct {
	Kind  ReentryKind
	After time.Duration // ReentryAfter only
}

// Goal is what converts an enrollment: an event (with an optional match),
// a condition on the contact, or both (either one met converts). It is also
// checked at entry, so a contact who already converted does not enter.
type Goal struct {
	Event     string        // "" when the goal has no event
	Match     *Expr         // bool over event, contact and journey; nil matches any such event
	Condition *Expr         // bool over contact; nil when the goal has no condition
	Within    time.Duration // 0: no window; else the goal counts only within this time of entry
}

// StepKind names what a step does.
type StepKind string

const (
	KindEmail         StepKind = "email"
	KindSMS           StepKind = "sms"
	KindWait          StepKind = "wait"
	KindWaitFor       StepKind = "wait_for"
	KindBranch        StepKind = "branch"
	KindSplit         StepKind = "split"
	KindUpdateContact StepKind = "update_contact"
	KindWebhook       StepKind = "webhook"
	KindExit          StepKind = "exit"
)

// StepKinds lists every step kind in the order the documentation gives them.
var StepKinds = []StepKind{KindEmail, KindSMS, KindWait, KindWaitFor, KindBranch, KindSplit, KindUpdateContact, KindWebhook, KindExit}

// Purpose is why an SMS step may send a text. SMS is allowed only where a
// journey states one.
type Purpose string

const (
	PurposeReminder      Purpose = "reminder"
	PurposeDecisionPoint Purpose = "decision_point"
	PurposeTimeSensitive Purpose = "time_sensitive"
	PurposeOnboarding    Purpose = "onboarding"
	PurposeTransactional Purpose = "transactional"
)

// Purposes lists the valid SMS purposes.
var Purposes = []Purpose{PurposeReminder, PurposeDecisionPoint, PurposeTimeSensitive, PurposeOnboarding, PurposeTransactional}

// Step is one step of a journey. Kind says which one of the kind fields is
// set (Exit steps have none).
type Step struct {
	ID   string
	Kind StepKind
	// Line and Col locate the step in the file (its first key).
	Line, Col int

	Email         *Message       // KindEmail
	SMS           *Message       // KindSMS (Purpose is set)
	Wait          *Wait          // KindWait
	WaitFor       *WaitFor       // KindWaitFor
	Branch        *Branch        // KindBranch
	Split         []SplitPath    // KindSplit; weights sum to 100
	UpdateContact *UpdateContact // KindUpdateContact
	Webhook       *Webhook       // KindWebhook

	// Guardrails of email and sms steps. Expires: the message is skipped
	// once it has passed (nil: never). Deadline: the time the message's
	// purpose ends, such as a webinar's start for its reminder (nil: none).
	// OnCap: OnCapSkip or OnCapDefer when a frequency cap or a
	// higher-priority journey stops the send ("": the policy's, skip by
	// default). Policy tightens the journey's policy for this step.
	Expires  *Expiry
	Deadline *Expr
	OnCap    string
	Policy   *policy.Override

	next         string
	explicitNext bool
	journeyID    string
}

// Next returns the id of the step that follows this one when it is done: the
// step's next: if it has one, else the following step in the file, else ""
// — which means the enrollment completes. Exit steps return "" (the
// enrollment ends there). Branch, split and wait_for steps choose among
// their own targets (Branch.Cases/Else, Split, WaitFor.OnEvent/OnTimeout),
// which Parse fills with Next() where the file leaves them out; for them,
// Next is only that default.
func (s *Step) Next() string { return s.next }

// Targets returns every step id this step can lead to, in order, without
// duplicates; "" stands for the enrollment completing. It is the step's
// out-edges in the journey's graph.
func (s *Step) Targets() []string {
	var ts []string
	switch s.Kind {
	case KindExit:
		return nil
	case KindBranch:
		if s.Branch == nil {
			return nil
		}
		for _, c := range s.Branch.Cases {
			ts = append(ts, c.Then)
		}
		ts = append(ts, s.Branch.Else)
	case KindSplit:
		for _, p := range s.Split {
			ts = append(ts, p.Next)
		}
	case KindWaitFor:
		if s.WaitFor == nil {
			return nil
		}
		ts = append(ts, s.WaitFor.OnEvent, s.WaitFor.OnTimeout)
	default:
		ts = append(ts, s.next)
	}
	var out []string
	for _, t := range ts {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Waits reports whether the step makes the enrollment wait (wait, wait_for).
func (s *Step) Waits() bool { return s.Kind == KindWait || s.Kind == KindWaitFor }

// Message is an email or SMS step: which template to render, and for SMS why
// the text is allowed.
type Message struct {
	Template string
	Purpose  Purpose // SMS only
}

// Wait holds the enrollment until a time. Exactly one of For, Until and
// UntilLocal is set.
type Wait struct {
	// For is a fixed duration from when the step is reached.
	For time.Duration
	// Until is a timestamp expression over contact, event and journey.
	// When the time has already passed, the wait ends at once.
	Until *Expr
	// UntilLocal is the next such local time in the contact's time zone
	// (strictly after the step is reached), on one of Weekdays if any.
	UntilLocal *TimeOfDay
	Weekdays   []time.Weekday // UntilLocal only; empty means any day
}

// WaitFor waits for an event with a timeout: OnEvent when an event named
// Event (and matching Match, if set) arrives first, OnTimeout otherwise.
// Both are resolved step ids ("" completes the enrollment).
type WaitFor struct {
	Event     string
	Match     *Expr // bool over event, contact and journey; nil matches any
	Timeout   time.Duration
	OnEvent   string
	OnTimeout string
}

// Branch goes to the Then of the first case whose If is true, else to Else.
type Branch struct {
	Cases []BranchCase
	Else  string
}

// BranchCase is one if/then of a branch.
type BranchCase struct {
	If   *Expr
	Then string
}

// SplitPath is one weighted path of a split. A contact's path is stable: it
// depends only on the contact and the journey (see Bucket).
type SplitPath struct {
	Weight int // percent
	Next   string
}

// UpdateContact sets contact fields. Set maps "lifecycle_stage",
// "journey_stage", "is_customer" or "attributes.NAME" to a literal value
// (string, int64, float64, bool, or nil to delete an attribute).
type UpdateContact struct {
	Set map[string]any
}

// Patch returns the update as a patch of the contact with the given id.
func (u *UpdateContact) Patch(contactID string) *nudge.ContactPatch {
	p := &nudge.ContactPatch{ID: contactID}
	for _, k := range slices.Sorted(maps.Keys(u.Set)) {
		v := u.Set[k]
		switch k {
		case "lifecycle_stage":
			s := v.(string)
			p.LifecycleStage = &s
		case "journey_stage":
			s := v.(string)
			p.JourneyStage = &s
		case "is_customer":
			b := v.(bool)
			p.IsCustomer = &b
		default:
			if p.Attributes == nil {
				p.Attributes = map[string]any{}
			}
			p.Attributes[strings.TrimPrefix(k, "attributes.")] = v
		}
	}
	return p
}

// Webhook POSTs a signed JSON payload to URL. SecretEnv, when set, names the
// environment variable holding the signing secret.
type Webhook struct {
	URL       string
	SecretEnv string
}

// Bucket maps a contact to a stable number in [0, 100) for a journey and a
// purpose ("holdout", or a split step's id), so that holdouts and splits do
// not change between evaluations, processes or versions of a journey.
func Bucket(journeyID, purpose, contactID string) int {
	sum := sha256.Sum256([]byte(journeyID + "\x00" + purpose + "\x00" + contactID))
	return int(binary.BigEndian.Uint64(sum[:8]) % 100)
}

// HeldOut reports whether the contact is in the journey's holdout.
func (j *Journey) HeldOut(contactID string) bool {
	return Bucket(j.ID, "holdout", contactID) < j.Holdout
}

// SplitNext returns the step id a contact goes to at a split step ("" for
// completing), stable per contact and journey. It returns Next() for other
// kinds of step.
func (s *Step) SplitNext(contactID string) string {
	if s.Kind != KindSplit {
		return s.next
	}
	b := Bucket(s.journeyID, s.ID, contactID)
	for _, p := range s.Split {
		if b < p.Weight {
			return p.Next
		}
		b -= p.Weight
	}
	return s.Split[len(s.Split)-1].Next
}
