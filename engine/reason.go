package engine

// Reason codes the engine writes into nudge.Decision.Reason. They are an API:
// the timeline, explain and reports match on them, so a code is never
// renamed or reused for something else. The policy (guardrails) adds its own.
const (
	// Entry.
	ReasonEnteredEvent     = "entered_event"     // entered: a trigger event arrived (and passed the filter)
	ReasonEnteredAttribute = "entered_attribute" // entered: the contact matches the attribute trigger
	ReasonEnteredDate      = "entered_date"      // entered: the contact's date trigger came round
	ReasonGoalAlreadyMet   = "goal_already_met"  // not entered: the contact already meets the goal
	ReasonEntryRule        = "entry_rule"        // not entered: the entry rule is false
	ReasonAlreadyEnrolled  = "already_enrolled"  // not entered: a live enrollment (of the same key) exists
	ReasonReentryNever     = "reentry_never"     // not entered: the journey allows one pass only
	ReasonReentryTooSoon   = "reentry_too_soon"  // not entered: re-entry "after" has not elapsed
	ReasonNoKey            = "no_key"            // not entered: the journey's key evaluated to ""

	// Sends.
	ReasonQueued    = "queued"     // sent: the message is in the outbox
	ReasonNoAddress = "no_address" // skipped: no email address / phone number for the channel
	ReasonHeldOut   = "held_out"   // held out: the enrollment is in the holdout, nothing is sent

	// Waits.
	ReasonWaitTimer     = "wait_timer"      // waiting: wait for a duration
	ReasonWaitUntil     = "wait_until"      // waiting: wait until a computed time
	ReasonWaitLocalTime = "wait_local_time" // waiting: wait until a local time of day
	ReasonWaitPassed    = "wait_passed"     // skipped: the wait's time had already passed
	ReasonWaitEvent     = "wait_event"      // waiting: wait_for an event, with a timeout
	ReasonEventArrived  = "event_arrived"   // branched: the awaited event arrived
	ReasonTimedOut      = "timed_out"       // branched: the awaited event did not arrive in time

	// Flow.
	ReasonBranchCase     = "branch_case"     // branched: a case was true (Details: case, condition, next)
	ReasonBranchElse     = "branch_else"     // branched: no case was true
	ReasonSplit          = "split"           // branched: a split path was chosen (Details: path, weight, next)
	ReasonContactUpdated = "contact_updated" // updated: update_contact set fields

	// Ends.
	ReasonGoalMet       = "goal_met"       // converted: the goal event or condition was met
	ReasonExitRule      = "exit_rule"      // exited: an exit rule became true
	ReasonExitStep      = "exit_step"      // exited: an exit step was reached
	ReasonCompleted     = "completed"      // completed: ran off the end of the steps
	ReasonStepLimit     = "step_limit"     // exited: too many steps in one transition (a guard)
	ReasonContactErased = "contact_erased" // exited: the contact was erased
	ReasonStepMissing   = "step_missing"   // exited: the step the enrollment waits in is gone (should not happen)

	// Errors.
	// ReasonConditionError: a CEL expression failed to evaluate (Details:
	// error, condition). A branch case that fails is taken as false and
	// recorded (Outcome skipped); a value a step needs (a wait's until, the
	// key) that fails ends the enrollment (Outcome exited) or keeps the
	// contact out (Outcome not_entered).
	ReasonConditionError = "condition_error"
)
