package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/delivery"
	"github.com/nudge/nudge/store/postgres"
	"github.com/nudge/nudge/store/sqlite"
)

// openExisting opens a database the server has already migrated, without
// migrating it: the harness reads while the server writes.
func openExisting(ctx context.Context, db string) (nudge.Store, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(strings.TrimPrefix(db, "sqlite:"))
}

// pageAll reads every page of a list ordered by id, 10000 at a time.
func pageAll[T any](list func(after string, limit int) ([]T, error), id func(T) string) ([]T, error) {
	var out []T
	after := ""
	for {
		page, err := list(after, 10000)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 10000 {
			return out, nil
		}
		after = id(page[len(page)-1])
	}
}

// allEnrollments pages a journey's enrollments.
func allEnrollments(ctx context.Context, s nudge.Store, journeyID string) ([]*nudge.Enrollment, error) {
	return pageAll(func(after string, limit int) ([]*nudge.Enrollment, error) {
		return s.EnrollmentList(ctx, &nudge.EnrollmentListParams{JourneyID: journeyID, AfterID: after, Limit: limit})
	}, func(e *nudge.Enrollment) string { return e.ID })
}

// allMessages pages the outbox ("" for every status).
func allMessages(ctx context.Context, s nudge.Store, status string) ([]*nudge.Message, error) {
	return pageAll(func(after string, limit int) ([]*nudge.Message, error) {
		return s.MessageList(ctx, &nudge.MessageListParams{Status: status, AfterID: after, Limit: limit})
	}, func(m *nudge.Message) string { return m.ID })
}

// eachDecision pages a journey's decision log.
func eachDecision(ctx context.Context, s nudge.Store, journeyID string, f func(*nudge.Decision)) error {
	p := &nudge.DecisionListParams{JourneyID: journeyID, Limit: 10000}
	for {
		page, err := s.DecisionList(ctx, p)
		if err != nil {
			return fmt.Errorf("list decisions: %w", err)
		}
		for _, d := range page {
			f(d)
		}
		if len(page) < p.Limit {
			return nil
		}
		p.AfterID = page[len(page)-1].ID
	}
}

// waitDrained waits until every contact is in the journey (or was kept out
// with a decision saying why), no enrollment waits, and no message is
// queued or sending.
func (c *crashRun) waitDrained(ctx context.Context) error {
	s, err := openExisting(ctx, c.o.db)
	if err != nil {
		return err
	}
	defer s.Close()
	deadline := time.Now().Add(c.o.drain)
	last := ""
	for {
		state, done, err := c.drainState(ctx, s, 10000)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if state != last {
			fmt.Fprintf(c.out, "  draining: %s\n", state)
			last = state
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not drained after %s: %s", c.o.drain, state)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.node.done():
			return fmt.Errorf("the last server exited while draining: %s", state)
		case <-time.After(2 * time.Second):
		}
	}
}

// drainState says how far the work is, and whether it is all done. Counts
// stop at limit; with a small limit it is a quick check.
func (c *crashRun) drainState(ctx context.Context, s nudge.Store, limit int) (string, bool, error) {
	live, err := s.EnrollmentList(ctx, &nudge.EnrollmentListParams{JourneyID: crashJourneyID, LiveOnly: true, Limit: limit})
	if err != nil {
		return "", false, err
	}
	var open []int
	for _, st := range []string{nudge.MessageQueued, nudge.MessageSending} {
		ms, err := s.MessageList(ctx, &nudge.MessageListParams{Status: st, Limit: limit})
		if err != nil {
			return "", false, err
		}
		open = append(open, len(ms))
	}
	if len(live)+open[0]+open[1] > 0 && limit < 10000 {
		return "", false, nil
	}
	ens, err := allEnrollments(ctx, s, crashJourneyID)
	if err != nil {
		return "", false, err
	}
	in := len(ens)
	if in < c.o.contacts && c.o.contacts-in <= 200 {
		// Those not in yet may have been kept out (the goal was met first).
		have := map[string]bool{}
		for _, e := range ens {
			have[e.ContactID] = true
		}
		for i := range c.o.contacts {
			id := fmt.Sprintf("c%d", i)
			if have[id] {
				continue
			}
			ds, err := s.DecisionList(ctx, &nudge.DecisionListParams{ContactID: id, JourneyID: crashJourneyID, Limit: 10})
			if err != nil {
				return "", false, err
			}
			if slices.ContainsFunc(ds, func(d *nudge.Decision) bool { return d.Outcome == nudge.OutcomeNotEntered }) {
				in++
			}
		}
	}
	state := fmt.Sprintf("%d of %d contacts entered or kept out, %d waiting, %d messages queued, %d sending",
		in, c.o.contacts, len(live), open[0], open[1])
	return state, in >= c.o.contacts && len(live) == 0 && open[0] == 0 && open[1] == 0, nil
}

// crashResult is what a run found.
type crashResult struct {
	contacts, kills          int
	faults                   int // database faults made (bench soak --fault-cmd): each may leave messages sending
	killsBy                  map[string]int
	acked, converts, retries int64
	took, killPhase          time.Duration
	concurrency              int // the delivery worker's: bounds unknown outcomes per kill

	enrollments     map[string]int // by state
	notEntered      int
	missing         int // contacts with neither an enrollment nor a not_entered decision
	dupEnrollments  int // a contact with two enrollments
	inconsistent    []string
	messages        map[string]map[string]int // channel → status → count
	nonFinal        int                       // a message not in a final status
	multiFinal      int                       // a history with two final statuses
	orphans         int                       // a message its enrollment does not name
	decisions       int
	lostDecisions   int
	dupDecisions    int
	sinkTotal       map[string]int
	dupByID         map[string]int // channel → deliveries beyond the first
	dupByStep       map[string]int
	unknownReceived map[string]int // outcome_unknown that did reach the sink
	sentNotReceived int            // recorded sent, never reached the sink
	receivedWrong   int            // reached the sink, recorded neither sent nor outcome_unknown
	other           []string
}

// finalStatus: a message in one of these has reached the end of what
// Nudge does with it (sent is final when no delivery report is configured,
// as here).
var finalStatus = map[string]bool{
	nudge.MessageSent: true, nudge.MessageDelivered: true, nudge.MessageUndelivered: true,
	nudge.MessageFailed: true, nudge.MessageCancelled: true, nudge.MessageOutcomeUnknown: true,
}

// verify reads the stopped server's store and checks it against the sinks.
func (c *crashRun) verify(ctx context.Context) (*crashResult, error) {
	s, err := openExisting(ctx, c.o.db)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	r := &crashResult{contacts: c.o.contacts, kills: c.totalKills(), acked: c.acked.Load(), converts: c.converts.Load(),
		retries: c.retries.Load(), concurrency: delivery.DefaultConcurrency, enrollments: map[string]int{}, messages: map[string]map[string]int{},
		sinkTotal: map[string]int{}, dupByID: map[string]int{}, dupByStep: map[string]int{}, unknownReceived: map[string]int{}}
	c.mu.Lock()
	r.killsBy = maps.Clone(c.kills)
	c.mu.Unlock()
	inconsistent := func(format string, args ...any) {
		if len(r.inconsistent) < 20 {
			r.inconsistent = append(r.inconsistent, fmt.Sprintf(format, args...))
		} else {
			r.inconsistent[19] = "… and more"
		}
	}

	ens, err := allEnrollments(ctx, s, crashJourneyID)
	if err != nil {
		return nil, err
	}
	byID := map[string]*nudge.Enrollment{}
	byContact := map[string]int{}
	for _, e := range ens {
		byID[e.ID] = e
		byContact[e.ContactID]++
		r.enrollments[e.State]++
	}
	for _, n := range byContact {
		r.dupEnrollments += n - 1
	}

	msgs, err := allMessages(ctx, s, "")
	if err != nil {
		return nil, err
	}
	msgByID := map[string]*nudge.Message{}
	for _, m := range msgs {
		msgByID[m.ID] = m
		if r.messages[m.Channel] == nil {
			r.messages[m.Channel] = map[string]int{}
		}
		r.messages[m.Channel][m.Status]++
		if !finalStatus[m.Status] {
			r.nonFinal++
		}
		e := byID[m.EnrollmentID]
		if e == nil || e.Steps[m.StepID].MessageID != m.ID {
			r.orphans++
			inconsistent("message %s (%s, step %s) is not the one its enrollment %s names", m.ID, m.Channel, m.StepID, m.EnrollmentID)
		}
	}

	// Decisions, by enrollment: step → outcome → count.
	type key struct{ enrollment, step, outcome string }
	counts := map[key]int{}
	byOutcome := map[[2]string]int{} // enrollment, outcome → count at any step
	notEntered := map[string]bool{}
	err = eachDecision(ctx, s, crashJourneyID, func(d *nudge.Decision) {
		r.decisions++
		if d.Outcome == nudge.OutcomeNotEntered {
			notEntered[d.ContactID] = true
			return
		}
		counts[key{d.EnrollmentID, d.StepID, d.Outcome}]++
		byOutcome[[2]string{d.EnrollmentID, d.Outcome}]++
	})
	if err != nil {
		return nil, err
	}
	r.notEntered = len(notEntered)
	for i := range c.o.contacts {
		id := fmt.Sprintf("c%d", i)
		if byContact[id] == 0 && !notEntered[id] {
			r.missing++
		}
	}
	for k, n := range counts {
		if byID[k.enrollment] == nil {
			r.lostDecisions++ // a decision about an enrollment that is not there
			inconsistent("decision %s/%s for enrollment %s, which does not exist", k.step, k.outcome, k.enrollment)
		}
		if n > 1 && k.outcome != nudge.OutcomeDeferred {
			r.dupDecisions += n - 1
			inconsistent("enrollment %s: %d decisions %q at step %q", k.enrollment, n, k.outcome, k.step)
		}
	}
	ended := map[string]string{nudge.EnrollmentCompleted: nudge.OutcomeCompleted,
		nudge.EnrollmentConverted: nudge.OutcomeConverted, nudge.EnrollmentExited: nudge.OutcomeExited}
	for _, e := range ens {
		if byOutcome[[2]string{e.ID, nudge.OutcomeEntered}] == 0 {
			r.lostDecisions++
			inconsistent("enrollment %s has no entered decision", e.ID)
		}
		outcome, ok := ended[e.State]
		switch {
		case !ok:
			inconsistent("enrollment %s is %s at step %s after the drain", e.ID, e.State, e.StepID)
		case byOutcome[[2]string{e.ID, outcome}] != 1:
			r.lostDecisions++
			inconsistent("enrollment %s is %s with %d %q decisions", e.ID, e.State, byOutcome[[2]string{e.ID, outcome}], outcome)
		case e.EndedAt.IsZero():
			inconsistent("enrollment %s is %s with no end time", e.ID, e.State)
		}
		if e.State == nudge.EnrollmentCompleted {
			for _, step := range []string{"welcome", "pause", "text", "pause2", "followup"} {
				if _, ok := e.Steps[step]; !ok {
					inconsistent("enrollment %s completed without running step %s", e.ID, step)
				}
			}
		}
		for step, ch := range crashSendSteps {
			rec, ran := e.Steps[step]
			sent := counts[key{e.ID, step, nudge.OutcomeSent}]
			switch {
			case ran && rec.MessageID != "" && sent != 1:
				r.lostDecisions++
				inconsistent("enrollment %s: message %s at step %s with %d sent decisions", e.ID, rec.MessageID, step, sent)
			case ran && rec.MessageID != "" && msgByID[rec.MessageID] == nil:
				r.lostDecisions++
				inconsistent("enrollment %s: step %s names message %s, which is not in the outbox", e.ID, step, rec.MessageID)
			case ran && rec.MessageID != "" && msgByID[rec.MessageID].Channel != ch:
				inconsistent("enrollment %s: step %s's message %s is %s, not %s", e.ID, step, rec.MessageID, msgByID[rec.MessageID].Channel, ch)
			case (!ran || rec.MessageID == "") && sent > 0:
				r.lostDecisions++
				inconsistent("enrollment %s: a sent decision at step %s but no message recorded", e.ID, step)
			}
		}
	}

	// Histories: one final status each.
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		herr error
		next = make(chan *nudge.Message)
	)
	for range 4 {
		wg.Go(func() {
			for m := range next {
				h, err := s.MessageHistory(ctx, m.ID)
				finals := 0
				for _, st := range h {
					if finalStatus[st.Status] && st.Status != nudge.MessageSent {
						finals++
					}
				}
				mu.Lock()
				if err != nil && herr == nil {
					herr = err
				}
				if finals > 1 {
					r.multiFinal++
					inconsistent("message %s: %d final statuses in its history", m.ID, finals)
				}
				mu.Unlock()
			}
		})
	}
	for _, m := range msgs {
		next <- m
	}
	close(next)
	wg.Wait()
	if herr != nil {
		return nil, fmt.Errorf("message history: %w", herr)
	}

	// The sinks against the store.
	for ch, sink := range map[string]*received{nudge.ChannelSMS: c.sms.received, nudge.ChannelEmail: c.mail.received} {
		sink.mu.Lock()
		r.sinkTotal[ch] = sink.total
		ids := slices.Collect(maps.Keys(sink.count))
		sink.mu.Unlock()
		r.dupByID[ch], r.dupByStep[ch] = sink.duplicates()
		for _, id := range ids {
			m := msgByID[id]
			switch {
			case m == nil:
				r.receivedWrong++
				inconsistent("%s sink got message %s, which is not in the outbox", ch, id)
			case m.Status == nudge.MessageOutcomeUnknown:
				r.unknownReceived[ch]++
			case m.Status != nudge.MessageSent && m.Status != nudge.MessageDelivered:
				r.receivedWrong++
				inconsistent("%s sink got message %s, recorded %s", ch, id, m.Status)
			}
		}
	}
	for _, m := range msgs {
		sink := map[string]*received{nudge.ChannelSMS: c.sms.received, nudge.ChannelEmail: c.mail.received}[m.Channel]
		if sink != nil && (m.Status == nudge.MessageSent || m.Status == nudge.MessageDelivered) && sink.times(m.ID) == 0 {
			r.sentNotReceived++
			inconsistent("message %s recorded %s, never reached the %s sink", m.ID, m.Status, m.Channel)
		}
	}
	return r, nil
}

func (r *crashResult) unknown() int {
	n := 0
	for _, st := range r.messages {
		n += st[nudge.MessageOutcomeUnknown]
	}
	return n
}

// problems lists the assertions the run broke.
func (r *crashResult) problems() []string {
	var out []string
	add := func(bad bool, format string, args ...any) {
		if bad {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	add(r.acked != int64(r.contacts), "%d of %d trigger events confirmed", r.acked, r.contacts)
	add(r.dupByID[nudge.ChannelSMS]+r.dupByStep[nudge.ChannelSMS] > 0, "duplicate SMS at the sink: %d of one message, %d of one step",
		r.dupByID[nudge.ChannelSMS], r.dupByStep[nudge.ChannelSMS])
	add(r.dupByID[nudge.ChannelEmail]+r.dupByStep[nudge.ChannelEmail] > 0, "duplicate email at the sink: %d of one message, %d of one step",
		r.dupByID[nudge.ChannelEmail], r.dupByStep[nudge.ChannelEmail])
	add(r.nonFinal > 0, "%d messages not in a final status", r.nonFinal)
	add(r.multiFinal > 0, "%d messages with two final statuses", r.multiFinal)
	add(r.unknown() > (r.kills+r.faults)*3*r.concurrency, "%d outcome_unknown messages: more than 3×%d per kill or fault", r.unknown(), r.concurrency)
	add(r.lostDecisions > 0, "%d decisions lost", r.lostDecisions)
	add(r.dupDecisions > 0, "%d decisions recorded twice", r.dupDecisions)
	add(r.missing > 0, "%d contacts neither entered nor kept out with a reason", r.missing)
	add(r.dupEnrollments > 0, "%d contacts enrolled twice", r.dupEnrollments)
	add(r.orphans > 0, "%d messages their enrollment does not name", r.orphans)
	add(r.sentNotReceived > 0, "%d messages recorded sent that no sink received", r.sentNotReceived)
	add(r.receivedWrong > 0, "%d messages the sinks received that are recorded neither sent nor outcome_unknown", r.receivedWrong)
	add(len(r.inconsistent) > 0, "inconsistent: %s", strings.Join(r.inconsistent, "; "))
	out = append(out, r.other...)
	return out
}

func (r *crashResult) print(w io.Writer) {
	kinds := slices.Sorted(maps.Keys(r.killsBy))
	var ks []string
	for _, k := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, r.killsBy[k]))
	}
	fmt.Fprintf(w, "result: %d contacts, %d kills (%s)", r.contacts, r.kills, strings.Join(ks, ", "))
	if r.took > 0 {
		fmt.Fprintf(w, " in %s, %s in all", r.killPhase.Round(time.Second), r.took.Round(time.Second))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  events confirmed      %d triggers, %d goals (%d batch requests re-sent after a kill)\n", r.acked, r.converts, r.retries)
	fmt.Fprintf(w, "  enrollments           %s; kept out (goal first) %d; missing %d; enrolled twice %d\n",
		fmtCounts(r.enrollments), r.notEntered, r.missing, r.dupEnrollments)
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		fmt.Fprintf(w, "  %-5s messages        %s\n", ch, fmtCounts(r.messages[ch]))
		fmt.Fprintf(w, "  %-5s sink            %d received; duplicates %d by message, %d by recipient and step; outcome_unknown that did arrive %d\n",
			ch, r.sinkTotal[ch], r.dupByID[ch], r.dupByStep[ch], r.unknownReceived[ch])
	}
	u := r.unknown()
	fmt.Fprintf(w, "  outcome_unknown       %d (%.1f per kill; bound 3×%d per kill; ≤ kills: %t)\n", u, float64(u)/float64(max(r.kills, 1)), r.concurrency, u <= r.kills)
	fmt.Fprintf(w, "  not in a final state  %d; two final states %d; sent but never received %d; received but not sent/unknown %d\n",
		r.nonFinal, r.multiFinal, r.sentNotReceived, r.receivedWrong)
	fmt.Fprintf(w, "  decisions lost        %d; recorded twice %d; messages their enrollment does not name %d\n", r.lostDecisions, r.dupDecisions, r.orphans)
	for _, s := range r.inconsistent {
		fmt.Fprintf(w, "  ! %s\n", s)
	}
	for _, s := range r.other {
		fmt.Fprintf(w, "  ! %s\n", s)
	}
}

func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}
