package delivery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/template"
)

// budgetRead is how long a journey's count of the day's SMS segments is
// trusted before it is read again from the store: in between, this
// process adds what it sends itself. Other nodes' texts show up at the
// next read.
const budgetRead = time.Minute

// smsRules are the policy's SMS rules for one pass: the opt-out notice and
// the journeys' budgets.
type smsRules struct {
	w      *Worker
	notice policy.OptOutNotice
	// texted: contacts who had a marketing text before (NoticeFirst).
	texted  map[string]bool
	budgets map[string]int
	day     time.Time // the start of the budgets' day
	zone    string
}

// A journey's SMS budget counts every text of the journey, transactional
// ones too: it is spend.

// budgetUse is a journey's SMS segments used today.
type budgetUse struct {
	day    time.Time
	used   int
	readAt time.Time
}

// budgetBook keeps budgetUse by journey across passes.
type budgetBook struct {
	mu   sync.Mutex
	use  map[string]*budgetUse
	errs int
}

func marketingSMS(m *nudge.Message) bool {
	return m.Channel == nudge.ChannelSMS && m.Purpose != policy.PurposeTransactional
}

// smsRules reads the policy and what its SMS rules need for msgs: who had
// a marketing text before, and the day's use of the budgets (read again
// from the store when over budgetRead old only if refresh). nil when
// there is no Config.Policy. An error is a store failure: the pass sends
// nothing (its claims expire and another pass tries again), as no text
// goes without knowing its budget.
func (w *Worker) smsRules(ctx context.Context, msgs []*nudge.Message, refresh bool) (*smsRules, error) {
	if w.cfg.Policy == nil {
		return nil, nil
	}
	p, err := w.cfg.Policy(ctx)
	if err != nil || p == nil {
		w.log.WarnContext(ctx, "delivery: policy not read; the shipped default's SMS rules apply", "error", err)
		p = policy.Default()
	}
	r := &smsRules{w: w, notice: p.OptOutNotice, budgets: p.SMSBudgets, zone: p.Timezone}
	var first []string
	var journeys []string
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.Channel != nudge.ChannelSMS {
			continue
		}
		if marketingSMS(m) && r.notice.When == policy.NoticeFirst && !seen["c:"+m.ContactID] {
			seen["c:"+m.ContactID] = true
			first = append(first, m.ContactID)
		}
		if _, ok := r.budgets[m.JourneyID]; ok && !seen["j:"+m.JourneyID] {
			seen["j:"+m.JourneyID] = true
			journeys = append(journeys, m.JourneyID)
		}
	}
	if len(first) > 0 {
		recent, err := w.cfg.Store.MessageRecent(ctx, first, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("delivery: earlier texts, for the opt-out notice: %w", err)
		}
		r.texted = map[string]bool{}
		for id, ms := range recent {
			for _, m := range ms {
				if marketingSMS(m) && m.Status != nudge.MessageQueued {
					r.texted[id] = true
				}
			}
		}
	}
	if len(journeys) > 0 {
		if err := r.readBudgets(ctx, journeys, refresh); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// readBudgets reads the day's use of the journeys' budgets that are not
// known for today or, if refresh, were read over budgetRead ago.
func (r *smsRules) readBudgets(ctx context.Context, journeys []string, refresh bool) error {
	now := r.w.cfg.Clock.Now()
	loc, err := time.LoadLocation(r.zone)
	if err != nil {
		loc = time.UTC
	}
	local := now.In(loc)
	r.day = time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc).UTC()
	book := &r.w.budget
	book.mu.Lock()
	defer book.mu.Unlock()
	if book.use == nil {
		book.use = map[string]*budgetUse{}
	}
	var stale []string
	for _, j := range journeys {
		u := book.use[j]
		if u == nil || !u.day.Equal(r.day) || (refresh && now.Sub(u.readAt) >= budgetRead) {
			stale = append(stale, j)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	used, err := r.w.cfg.Store.MessageSMSSegments(ctx, stale, r.day)
	if err != nil {
		return fmt.Errorf("delivery: SMS budgets: %w", err)
	}
	for _, j := range stale {
		book.use[j] = &budgetUse{day: r.day, used: used[j], readAt: now}
	}
	return nil
}

// withNotice adds the opt-out notice to a marketing text, as the policy
// says.
func (r *smsRules) withNotice(m *nudge.Message, text string) string {
	if r == nil || !marketingSMS(m) {
		return text
	}
	switch r.notice.When {
	case policy.NoticeEvery:
	case policy.NoticeFirst:
		if r.texted[m.ContactID] {
			return text
		}
	default:
		return text
	}
	return template.WithOptOutNotice(text, r.notice.Text)
}

// spend takes segments from m's journey's budget for today. When they do
// not fit it returns the update that cancels m, with the reason.
func (r *smsRules) spend(m *nudge.Message, segments int) *nudge.MessageUpdate {
	if r == nil || m.Channel != nudge.ChannelSMS {
		return nil
	}
	budget, ok := r.budgets[m.JourneyID]
	if !ok {
		return nil
	}
	book := &r.w.budget
	book.mu.Lock()
	defer book.mu.Unlock()
	u := book.use[m.JourneyID]
	if u == nil { // read for every budgeted journey of the pass
		return nil
	}
	if u.used+segments <= budget {
		u.used += segments
		return nil
	}
	text := fmt.Sprintf("journey %s has used %d of its %d SMS segments today (%s); this text needs %d. Its texts go again after midnight.",
		m.JourneyID, u.used, budget, r.zone, segments)
	return &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageCancelled, Error: text,
		Detail: map[string]any{"reason": policy.ReasonSMSBudgetSpent, "at": "dispatch", "error": text,
			"budget": budget, "used": u.used, "segments": segments, "day": r.day}}
}
