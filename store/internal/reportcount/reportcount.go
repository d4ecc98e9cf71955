// Package reportcount computes the changes of the report counters both
// stores keep (report_cohorts, report_outcomes, report_paths,
// report_messages; SQLite migration 0013, PostgreSQL migration 0013) from
// what a write changes, in Go, so that a store counts a call's writes once
// per call rather than per row. The stores read the state before a write,
// compute its deltas here and upsert each counter row once; no SQL here.
//
// Counts are per journey, version and cohort day (the UTC day of the
// enrollment's entered_at, as days since the Unix epoch). An enrollment's
// journey, version and entered_at never change.
package reportcount

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// Enrollment is what the counters know of an enrollment: its row, its
// decisions (step, channel, outcome, reason), oldest first, and, when a
// commit cancels its messages, its queued ones by step and channel.
type Enrollment struct {
	Journey   string
	Version   int64
	Day       int64
	HeldOut   bool
	State     string
	Decisions [][4]string
	Queued    map[[2]string]int64
}

// Queue counts a queued message of e that a commit cancels.
func (e *Enrollment) Queue(step, channel string) {
	if e.Queued == nil {
		e.Queued = map[[2]string]int64{}
	}
	e.Queued[[2]string{step, channel}]++
}

// Day is the cohort day of a time.
func Day(t time.Time) int64 { return DayOf(t.UnixMicro()) }

// DayOf is the cohort day of a time in Unix microseconds.
func DayOf(us int64) int64 { return us / 86400000000 }

type (
	cohortKey struct {
		journey       string
		version, day  int64
		heldOut       bool
		state, reason string
	}
	outcomeKey struct {
		journey                        string
		version, day                   int64
		step, channel, outcome, reason string
	}
	// MessageKey is a report_messages row's key.
	MessageKey struct {
		Journey               string
		Version, Day          int64
		Step, Channel, Status string
	}
	pathKey struct {
		journey                            string
		version, day                       int64
		step                               string
		sent, held, journeyHeld, converted bool
	}
)

// Deltas are the changes of a write to the counters.
type Deltas struct {
	cohorts  map[cohortKey]int64
	outcomes map[outcomeKey][2]int64 // decisions, enrollments
	paths    map[pathKey]int64
	messages map[MessageKey]int64
}

// NewDeltas returns no changes.
func NewDeltas() *Deltas {
	return &Deltas{cohorts: map[cohortKey]int64{}, outcomes: map[outcomeKey][2]int64{}, paths: map[pathKey]int64{},
		messages: map[MessageKey]int64{}}
}

// Add counts what e counts (k = 1) or takes it out (k = -1), its messages
// aside.
func (r *Deltas) Add(e *Enrollment, k int64) {
	reason := ""
	kinds := map[[4]string]bool{}
	type flags struct{ sent, held bool }
	steps := map[string]flags{}
	for _, d := range e.Decisions {
		if d[2] == nudge.OutcomeConverted || d[2] == nudge.OutcomeExited || d[2] == nudge.OutcomeCompleted {
			reason = d[3]
		}
		o := outcomeKey{e.Journey, e.Version, e.Day, d[0], d[1], d[2], d[3]}
		v := r.outcomes[o]
		v[0] += k
		if !kinds[d] {
			kinds[d] = true
			v[1] += k
		}
		r.outcomes[o] = v
		if d[0] != "" {
			f := steps[d[0]]
			f.sent = f.sent || d[2] == nudge.OutcomeSent
			f.held = f.held || d[2] == nudge.OutcomeHeldOut
			steps[d[0]] = f
		}
	}
	r.cohorts[cohortKey{e.Journey, e.Version, e.Day, e.HeldOut, e.State, reason}] += k
	for step, f := range steps {
		r.paths[pathKey{e.Journey, e.Version, e.Day, step, f.sent, f.held, e.HeldOut, e.State == nudge.EnrollmentConverted}] += k
	}
}

// AddMessage counts n messages of e at a step and channel with a status.
func (r *Deltas) AddMessage(e *Enrollment, step, channel, status string, n int64) {
	r.messages[MessageKey{e.Journey, e.Version, e.Day, step, channel, status}] += n
}

// AddMessages adds message deltas (see Moves).
func (r *Deltas) AddMessages(m map[MessageKey]int64) {
	for k, n := range m {
		r.messages[k] += n
	}
}

// Rows are the non-zero changes of each counter table, as JSON arrays of
// rows in the order of the table's columns (its key, then its counts),
// "" for a table without any.
func (r *Deltas) Rows() (cohorts, outcomes, paths, messages string, err error) {
	var c, o, p [][]any
	for k, n := range r.cohorts {
		if n != 0 {
			c = append(c, []any{k.journey, k.version, k.day, k.heldOut, k.state, k.reason, n})
		}
	}
	for k, n := range r.outcomes {
		if n != [2]int64{} {
			o = append(o, []any{k.journey, k.version, k.day, k.step, k.channel, k.outcome, k.reason, n[0], n[1]})
		}
	}
	for k, n := range r.paths {
		if n != 0 {
			p = append(p, []any{k.journey, k.version, k.day, k.step, k.sent, k.held, k.journeyHeld, k.converted, n})
		}
	}
	if cohorts, err = rowsJSON(c); err != nil {
		return
	}
	if outcomes, err = rowsJSON(o); err != nil {
		return
	}
	if paths, err = rowsJSON(p); err != nil {
		return
	}
	messages, err = MessageRows(r.messages)
	return
}

// MessageRows are the non-zero changes of report_messages as Rows gives
// them.
func MessageRows(m map[MessageKey]int64) (string, error) {
	var rows [][]any
	for k, n := range m {
		if n != 0 {
			rows = append(rows, []any{k.Journey, k.Version, k.Day, k.Step, k.Channel, k.Status, n})
		}
	}
	return rowsJSON(rows)
}

func rowsJSON(rows [][]any) (string, error) {
	if len(rows) == 0 {
		return "", nil
	}
	b, err := json.Marshal(rows)
	return string(b), err
}

// IDs are the enrollments c names: its own, those of its decisions and
// messages and those whose messages it cancels, each once.
func IDs(c *nudge.EngineCommit) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, e := range c.Enrollments {
		add(e.ID)
	}
	for _, d := range c.Decisions {
		add(d.EnrollmentID)
	}
	for _, m := range c.Messages {
		add(m.EnrollmentID)
	}
	for _, id := range c.CancelMessages {
		add(id)
	}
	return ids
}

// Commit computes what c changes of the counters, but for the messages it
// inserts: from what the enrollments it names counted before it (before,
// read in its transaction before it writes, with the queued messages it
// cancels) to what they count after it. It returns the enrollments as they
// are after it (to count its messages by) and those converted before or
// after it, whose report_conversions rows are to be rewritten. An
// enrollment that exists neither before nor in c counts nothing, as in a
// report, which joins decisions and messages to their enrollment.
func Commit(c *nudge.EngineCommit, before map[string]*Enrollment, now time.Time) (d *Deltas, after map[string]*Enrollment, converted []string) {
	d = NewDeltas()
	after = make(map[string]*Enrollment, len(before)+len(c.Enrollments))
	for id, e := range before {
		a := *e
		a.Decisions = e.Decisions[:len(e.Decisions):len(e.Decisions)]
		a.Queued = nil
		after[id] = &a
	}
	for _, e := range c.Enrollments {
		a := after[e.ID]
		if a == nil {
			entered := e.EnteredAt
			if entered.IsZero() {
				entered = now
			}
			a = &Enrollment{Journey: e.JourneyID, Version: e.Version, Day: Day(entered)}
			after[e.ID] = a
		}
		a.HeldOut, a.State = e.HeldOut, e.State
	}
	for _, x := range c.Decisions {
		if a := after[x.EnrollmentID]; a != nil {
			a.Decisions = append(a.Decisions, [4]string{x.StepID, x.Channel, x.Outcome, x.Reason})
		}
	}
	for id, a := range after {
		b := before[id]
		if b != nil {
			d.Add(b, -1)
			for k, n := range b.Queued {
				d.AddMessage(b, k[0], k[1], nudge.MessageQueued, -n)
				d.AddMessage(b, k[0], k[1], nudge.MessageCancelled, n)
			}
		}
		d.Add(a, 1)
		if a.State == nudge.EnrollmentConverted || b != nil && b.State == nudge.EnrollmentConverted {
			converted = append(converted, id)
		}
	}
	return d, after, converted
}

// Message is what the counters know of a message: its enrollment, and the
// report_messages key of its status.
type Message struct {
	Enrollment string
	Key        MessageKey
}

// Moves are the moves of a call's messages between the report_messages
// counters of their statuses, and the enrollments whose report_conversions
// touches change (a message cancelled, or no longer).
type Moves struct {
	Messages map[MessageKey]int64
	Touched  []string
}

// Move counts m, counted as it was, at status now.
func (s *Moves) Move(m Message, now string) {
	if m.Key.Status == now {
		return
	}
	if s.Messages == nil {
		s.Messages = map[MessageKey]int64{}
	}
	s.Messages[m.Key]--
	k := m.Key
	k.Status = now
	s.Messages[k]++
	if m.Key.Status == nudge.MessageCancelled || now == nudge.MessageCancelled {
		s.Touched = append(s.Touched, m.Enrollment)
	}
}

// ParseConversion sets c's steps and touches from a report_conversions
// row's (steps separated by commas; touches separated by char 30, each a
// step, a channel and a time in Unix microseconds separated by char 31).
func ParseConversion(c *nudge.ReportConversion, steps, touches string) error {
	if steps != "" {
		c.Steps = strings.Split(steps, ",")
		slices.Sort(c.Steps)
	}
	if touches == "" {
		return nil
	}
	c.Touches = make([]nudge.ReportTouch, 0, strings.Count(touches, "\x1e")+1)
	for rest := touches; rest != ""; {
		var t string
		t, rest, _ = strings.Cut(rest, "\x1e")
		if t == "" {
			continue
		}
		step, more, ok1 := strings.Cut(t, "\x1f")
		channel, at, ok2 := strings.Cut(more, "\x1f")
		if !ok1 || !ok2 || strings.Contains(at, "\x1f") {
			return fmt.Errorf("touch %q: want step, channel and time", t)
		}
		us, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return fmt.Errorf("touch %q: %w", t, err)
		}
		c.Touches = append(c.Touches, nudge.ReportTouch{StepID: step, Channel: channel, At: time.UnixMicro(us).UTC()})
	}
	return nil
}

// Scanner is a row of a query's result, of database/sql or pgx.
type Scanner interface{ Scan(dest ...any) error }

// Scans are the scans of the rows of a report's four kinds of counts, each
// appending to its field of d: cohorts (held_out, state, reason, count),
// outcomes (step, channel, outcome, reason, decisions, enrollments), paths
// (step, sent, step held out, journey held out, converted, count) and
// messages (step, channel, status, count).
func Scans(d *nudge.ReportData) (cohorts, outcomes, paths, messages func(Scanner) error) {
	cohorts = func(rows Scanner) error {
		var c nudge.ReportCohort
		err := rows.Scan(&c.HeldOut, &c.State, &c.Reason, &c.Count)
		d.Cohorts = append(d.Cohorts, c)
		return err
	}
	outcomes = func(rows Scanner) error {
		var o nudge.ReportOutcome
		err := rows.Scan(&o.StepID, &o.Channel, &o.Outcome, &o.Reason, &o.Decisions, &o.Enrollments)
		d.Outcomes = append(d.Outcomes, o)
		return err
	}
	paths = func(rows Scanner) error {
		var r nudge.ReportPath
		err := rows.Scan(&r.StepID, &r.Sent, &r.StepHeldOut, &r.JourneyHeldOut, &r.Converted, &r.Count)
		d.Paths = append(d.Paths, r)
		return err
	}
	messages = func(rows Scanner) error {
		var m nudge.ReportMessages
		err := rows.Scan(&m.StepID, &m.Channel, &m.Status, &m.Count)
		d.Messages = append(d.Messages, m)
		return err
	}
	return
}

// RunAll runs jobs at once and returns their errors, after all end.
func RunAll(jobs []func() error) error {
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = j()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Merge adds the counts of parts to d's and sums them (see
// nudge.ReportData.SumCounts).
func Merge(d *nudge.ReportData, parts []*nudge.ReportData) {
	for _, c := range parts {
		d.Cohorts = append(d.Cohorts, c.Cohorts...)
		d.Outcomes = append(d.Outcomes, c.Outcomes...)
		d.Paths = append(d.Paths, c.Paths...)
		d.Messages = append(d.Messages, c.Messages...)
	}
	d.SumCounts()
}

// Overview sums the overview's counts per journey from the rows of a
// store's queries: counters for the whole days of the range, rows for the
// parts of days at its ends.
type Overview struct {
	d                  *nudge.ReportOverviewData
	index              map[string]int
	sent, opted, compl map[[2]string]int64
}

// NewOverview starts the counts of d, one journey a row of the scan
// Journey gives (by id).
func NewOverview(d *nudge.ReportOverviewData) *Overview {
	return &Overview{d: d, index: map[string]int{}, sent: map[[2]string]int64{}, opted: map[[2]string]int64{},
		compl: map[[2]string]int64{}}
}

// Journey scans a journey's id.
func (o *Overview) Journey(rows Scanner) error {
	var c nudge.ReportJourneyCounts
	if err := rows.Scan(&c.JourneyID); err != nil {
		return err
	}
	o.index[c.JourneyID] = len(o.d.Journeys)
	o.d.Journeys = append(o.d.Journeys, c)
	return nil
}

// Cohort scans a journey's enrollments by held_out and state: journey,
// held_out, state, count.
func (o *Overview) Cohort(rows Scanner) error {
	var (
		id, state string
		held      bool
		n         int64
	)
	if err := rows.Scan(&id, &held, &state, &n); err != nil {
		return err
	}
	if i, ok := o.index[id]; ok {
		c := &o.d.Journeys[i]
		conv := state == nudge.EnrollmentConverted
		c.Entered += n
		if conv {
			c.Converted += n
		}
		if held {
			c.HeldOut += n
			if conv {
				c.HeldOutConverted += n
			}
		}
	}
	return nil
}

// Sent, Opted and Complained scan a journey's messages not cancelled, those
// followed by an opt-out, and the emails a complaint names: journey,
// channel, count.
func (o *Overview) Sent(rows Scanner) error       { return scanCount(rows, o.sent) }
func (o *Overview) Opted(rows Scanner) error      { return scanCount(rows, o.opted) }
func (o *Overview) Complained(rows Scanner) error { return scanCount(rows, o.compl) }

func scanCount(rows Scanner, m map[[2]string]int64) error {
	var (
		id, ch string
		n      int64
	)
	if err := rows.Scan(&id, &ch, &n); err != nil {
		return err
	}
	m[[2]string{id, ch}] += n
	return nil
}

// Done records the health counts of each journey.
func (o *Overview) Done() {
	for i := range o.d.Journeys {
		c := &o.d.Journeys[i]
		for _, ch := range []string{nudge.ChannelSMS, nudge.ChannelEmail} {
			k := [2]string{c.JourneyID, ch}
			c.AddHealth(ch, o.sent[k], o.opted[k], 0)
		}
		c.AddHealth("complaint", 0, 0, o.compl[[2]string{c.JourneyID, nudge.ChannelEmail}])
	}
}
