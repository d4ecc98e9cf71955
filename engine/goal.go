package engine

import (
	"fmt"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
)

// goalMet reports whether the live enrollment en meets its journey's goal,
// on the event ev (nil for a contact change or a wake) and the contact c, at
// now; why says how, for the decision. A goal expression that fails to
// evaluate counts as not met: it is checked on every event and change, and a
// missing attribute usually means "not yet".
func goalMet(j *journey.Journey, en *nudge.Enrollment, c *nudge.Contact, ev *nudge.Event, now time.Time) (bool, string) {
	g := j.Goal
	if g == nil {
		return false, ""
	}
	if ev != nil && g.Event != "" && ev.Name == g.Event {
		at := ev.Timestamp
		if at.IsZero() || at.After(now) {
			at = now
		}
		if withinGoal(g, en, at) {
			ok := g.Match == nil
			if !ok {
				m, err := g.Match.EvalBool(journey.Vars{Contact: c, Event: ev, Journey: journeyVars(j, en)})
				ok = err == nil && m
			}
			if ok {
				return true, ev.Name + " arrived"
			}
		}
	}
	if g.Condition != nil && withinGoal(g, en, now) {
		m, err := g.Condition.EvalBool(journey.Vars{Contact: c, Event: en.Event, Journey: journeyVars(j, en)})
		if err == nil && m {
			return true, g.Condition.Source + " is true"
		}
	}
	return false, ""
}

func withinGoal(g *journey.Goal, en *nudge.Enrollment, at time.Time) bool {
	return g.Within == 0 || en.EnteredAt.IsZero() || !at.After(en.EnteredAt.Add(g.Within))
}

// exitRule returns the first of the journey's exit rules that is true for
// the contact, or nil. Like goals, a rule that fails to evaluate is false.
func exitRule(j *journey.Journey, en *nudge.Enrollment, c *nudge.Contact) *journey.Expr {
	if len(j.Exit) == 0 {
		return nil
	}
	v := journey.Vars{Contact: c, Event: en.Event, Journey: journeyVars(j, en)}
	for _, x := range j.Exit {
		if ok, err := x.EvalBool(v); err == nil && ok {
			return x
		}
	}
	return nil
}

// endTransition ends a live enrollment without running steps: converted or
// exited, cancelling its queued messages (queued says how many there are,
// for the sentence).
func endTransition(en *nudge.Enrollment, c *nudge.Contact, state, outcome, reason, message string, details map[string]any, queued int, now time.Time) *Transition {
	cp := *en
	cp.State, cp.EndedAt, cp.UpdatedAt, cp.WakeAt, cp.WaitEvent = state, now, now, time.Time{}, ""
	switch queued {
	case 0:
		message += "."
	case 1:
		message += "; 1 queued message cancelled."
	default:
		message += fmt.Sprintf("; %d queued messages cancelled.", queued)
	}
	if details == nil {
		details = map[string]any{}
	}
	details["cancelled"] = queued
	d := &nudge.Decision{
		At: now, ContactID: en.ContactID, JourneyID: en.JourneyID, Version: en.Version, EnrollmentID: en.ID,
		StepID: en.StepID, Outcome: outcome, Reason: reason, Message: message, Details: details,
	}
	return &Transition{Enrollment: &cp, Decisions: []*nudge.Decision{d}, Cancel: true, Contact: c}
}

// convert ends en as converted.
func convert(en *nudge.Enrollment, c *nudge.Contact, why string, queued int, now time.Time) *Transition {
	return endTransition(en, c, nudge.EnrollmentConverted, nudge.OutcomeConverted, ReasonGoalMet, "Converted: "+why, map[string]any{"goal": why}, queued, now)
}

// exitByRule ends en because the exit rule x is true.
func exitByRule(en *nudge.Enrollment, c *nudge.Contact, x *journey.Expr, queued int, now time.Time) *Transition {
	return endTransition(en, c, nudge.EnrollmentExited, nudge.OutcomeExited, ReasonExitRule, "Exited: "+x.Source+" is true", map[string]any{"condition": x.Source}, queued, now)
}
