package engine

import (
	"context"
	"fmt"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
)

// pauseKey names a step of a journey.
type pauseKey struct{ journey, step string }

// CheckOptOutPauses is the guardrail that acts on the numbers: it counts
// every SMS step's texts queued within the policy's opt_out_pause window
// (and since the step was last resumed) and those followed within 24 hours
// by an opt-out, and pauses each step not yet paused whose rate crosses the
// threshold. It returns the steps it paused; from then on the step's sends
// are skipped (policy.ReasonStepPausedOptOutRate) until an admin resumes it
// (StepResume). It reads the time from the engine's clock only, so the same
// data and time give the same pauses; the server runs it every minute, and
// any caller may run it at any time.
func (e *Engine) CheckOptOutPauses(ctx context.Context) ([]*nudge.StepPause, error) {
	now := e.clock.Now()
	ws, _, err := e.currentPolicy(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: opt-out pauses: %w", err)
	}
	rule := ws.OptOutPause
	if rule.Off {
		return nil, nil
	}
	counts, err := e.store.StepOptOutCounts(ctx, now.Add(-rule.Over), now)
	if err != nil {
		return nil, fmt.Errorf("engine: opt-out pauses: %w", err)
	}
	held, err := e.pauses(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: opt-out pauses: %w", err)
	}
	var paused []*nudge.StepPause
	for _, c := range counts {
		if held[pauseKey{c.JourneyID, c.StepID}] != nil || !rule.Crossed(c.Sent, c.OptedOut) {
			continue
		}
		p := &nudge.StepPause{
			JourneyID: c.JourneyID, StepID: c.StepID, Reason: policy.ReasonStepPausedOptOutRate,
			Sent: c.Sent, OptedOut: c.OptedOut, Rate: float64(c.OptedOut) / float64(c.Sent),
			Threshold: rule.Rate, MinSends: rule.MinSends, Since: c.Since, PausedAt: now,
		}
		ok, err := e.store.StepPausePut(ctx, p)
		if err != nil {
			return paused, fmt.Errorf("engine: pause step %s of journey %s: %w", c.StepID, c.JourneyID, err)
		}
		if ok {
			e.log.WarnContext(ctx, "engine: SMS step paused on its opt-out rate", "journey_id", p.JourneyID, "step_id", p.StepID,
				"sent", p.Sent, "opted_out", p.OptedOut, "rate", p.Rate, "threshold", p.Threshold)
			paused = append(paused, p)
		}
	}
	return paused, nil
}

// pauses reads the pauses that hold, for a batch's guard.
func (e *Engine) pauses(ctx context.Context) (map[pauseKey]*nudge.StepPause, error) {
	list, err := e.store.StepPauseList(ctx, &nudge.StepPauseListParams{Active: true})
	if err != nil {
		return nil, fmt.Errorf("read paused steps: %w", err)
	}
	m := make(map[pauseKey]*nudge.StepPause, len(list))
	for _, p := range list {
		m[pauseKey{p.JourneyID, p.StepID}] = p
	}
	return m, nil
}

// stepPause is the pause that holds for a message's step, for the
// dispatch re-check: nil when the step is not paused or the message is not
// a journey's SMS.
func (e *Engine) stepPause(ctx context.Context, m *nudge.Message) (*nudge.StepPause, error) {
	if m.Channel != nudge.ChannelSMS || m.JourneyID == "" {
		return nil, nil
	}
	p, err := e.store.StepPauseActive(ctx, m.JourneyID, m.StepID)
	if nudge.ErrorCode(err) == nudge.ENOTFOUND {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the step's pause: %w", err)
	}
	return p, nil
}
