package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// pausedSteps describes each journey's steps paused on their opt-out rate,
// for nudge journey list: "text (2.5% opt-outs since 2026-03-02)".
func pausedSteps(ctx context.Context, s nudge.Store) (map[string]string, error) {
	list, err := s.StepPauseList(ctx, &nudge.StepPauseListParams{Active: true})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := len(list) - 1; i >= 0; i-- {
		p := list[i]
		d := fmt.Sprintf("%s (%.1f%% opt-outs, paused %s)", p.StepID, 100*p.Rate, p.PausedAt.UTC().Format("2006-01-02 15:04"))
		out[p.JourneyID] = strings.TrimPrefix(out[p.JourneyID]+", "+d, ", ")
	}
	return out, nil
}

// resumeStep ends the pause of a step (nudge journey resume ID --step STEP).
func resumeStep(ctx context.Context, s nudge.Store, id, step string, stdout io.Writer) error {
	p, err := s.StepResume(ctx, id, step, "cli", nudge.SystemClock{}.Now())
	if err != nil {
		return fmt.Errorf("resume step %s of %s: %w", step, id, err)
	}
	fmt.Fprintf(stdout, "step %s of %s is resumed (it was paused at %s: %d of %d texts, %s, were followed by an opt-out)\n",
		step, id, p.PausedAt.Format(time.RFC3339), p.OptedOut, p.Sent, pctText(p.Rate))
	return nil
}

func pctText(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// pauseCheckEvery is how often the server checks SMS steps' opt-out rates,
// at most: a check that takes long (it reads every text of the window) waits
// ten times its own duration before the next, so it never takes more than a
// tenth of a core.
const pauseCheckEvery = time.Minute

// pauseLoop pauses SMS steps whose opt-out rate crosses the policy's
// threshold (engine.CheckOptOutPauses), every pauseCheckEvery or so, and
// tells webhook subscriptions of each pause (step.paused).
func (m *Main) pauseLoop(ctx context.Context) {
	defer m.bg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		paused, err := m.Engine.CheckOptOutPauses(ctx)
		if err != nil && ctx.Err() == nil {
			m.Logger.WarnContext(ctx, "opt-out pause check", "err", err)
		}
		for _, p := range paused {
			if m.emit != nil {
				m.emit(ctx, nudge.WebhookStepPaused, "step.paused:"+p.JourneyID+":"+p.StepID+":"+p.PausedAt.Format(time.RFC3339Nano), p.PausedAt, p)
			}
		}
		t.Reset(max(pauseCheckEvery, 10*time.Since(start)))
	}
}
