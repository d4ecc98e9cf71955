package sim

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/ingest"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/store/sqlite"
)

// Config is one simulation's input.
type Config struct {
	// Journeys are published, in order, when the replay starts.
	Journeys []*journey.Journey
	// Contacts is a CRM export in CSV (see ingest.CSVReader), nil for none;
	// Mapping maps its headers (nil: the default mapping).
	Contacts     io.Reader
	ContactsName string // for messages; default "contacts.csv"
	Mapping      ingest.Mapping
	// Events is the parsed timeline (see ReadTimeline).
	Events []*Event
	// From and To bound the replay. Zero From: the first event's time;
	// zero To: 30 days after the last event (after From without events).
	From, To time.Time
	// Normalizer validates contact fields of the CSV (nil: region US).
	Normalizer *ingest.ContactNormalizer
	// Dir is where the temporary store lives (default: a new directory in
	// os.TempDir); the store file is removed at the end either way.
	Dir string
	// Policy is the workspace policy the engine applies (nil: the shipped
	// default, policy.Default). Its Version is recorded with every decision.
	// Every email and SMS passes it: consent, quiet hours, caps, priority.
	Policy *policy.Policy
	// Logger receives the engine's warnings (default: discard).
	Logger *slog.Logger
	// TotalsOnly leaves Report.Contacts empty: for large runs, whose
	// decisions need not all be held in memory.
	TotalsOnly bool
	// Progress, if set, is called after each step of the replay with the
	// virtual time reached.
	Progress func(now time.Time)
	// Reports keeps what the store's reports read (the report counters,
	// the stage history and their indexes), for a caller that reads a
	// report of the store after the run (nudge simulate --report keeps
	// the file). Without it the store is slimmed (sqlite.DB.Slim): cheaper
	// to write, with the same decisions, and reports that are wrong.
	Reports bool
}

// batchSize is how many inbox items or due enrollments the engine claims at once.
const batchSize = 1000

// DefaultSpan is how long the replay runs after the last event when To is not given.
const DefaultSpan = 30 * 24 * time.Hour

// Run simulates cfg and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Journeys) == 0 {
		return nil, errors.New("sim: no journeys to simulate")
	}
	from, to := cfg.From, cfg.To
	if from.IsZero() {
		if len(cfg.Events) == 0 {
			return nil, errors.New("sim: no events and no start time: give a timeline or From")
		}
		from = cfg.Events[0].At()
	}
	if to.IsZero() {
		to = from
		if n := len(cfg.Events); n > 0 && cfg.Events[n-1].At().After(to) {
			to = cfg.Events[n-1].At()
		}
		to = to.Add(DefaultSpan)
	}
	from, to = from.UTC(), to.UTC()
	if !to.After(from) {
		return nil, fmt.Errorf("sim: the end (%s) is not after the start (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	logger := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	normalizer := cmp.Or(cfg.Normalizer, &ingest.ContactNormalizer{DefaultRegion: "US"})

	dir, cleanup, err := tempDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	db, err := sqlite.OpenPrivate(filepath.Join(dir, "sim.db"))
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	// Unless asked for, nothing reads the store's reports or the
	// console's indexes: the report below is the decisions and
	// enrollments themselves.
	if !cfg.Reports {
		if err := db.Slim(ctx); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}

	pol := cmp.Or(cfg.Policy, policy.Default())
	clock := NewClock(from)
	store := &simStore{DB: db, clock: clock}
	var n int64
	eng, err := engine.New(engine.Config{
		Store:  store,
		Clock:  clock,
		Logger: logger,
		NewID: func() string {
			n++
			return fmt.Sprintf("s%011d", n)
		},
		Batch: batchSize,
		// Without a policy of its own the run keeps to the shipped
		// default, which is what the engine reads from a store without
		// one: given here, it is not read again for every batch.
		Policy:       pol,
		DateLookback: time.Nanosecond, // nothing before From
	})
	if err != nil {
		return nil, err
	}

	r := &Report{From: from, To: to, totalsOnly: cfg.TotalsOnly}
	if cfg.Contacts != nil {
		if err := importContacts(ctx, db, cfg, normalizer, clock, r); err != nil {
			return nil, err
		}
		// The CRM's starting state is not a change: drain what the import
		// left in the inbox before any journey exists.
		if _, err := eng.RunOnce(ctx); err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
	}
	for _, j := range cfg.Journeys {
		v, _, err := store.JourneyPublish(ctx, &nudge.JourneyPublishParams{ID: j.ID, Name: j.Name, Source: j.Source, Hash: j.Hash()}, from)
		if err != nil {
			return nil, fmt.Errorf("sim: publish %s: %w", j.ID, err)
		}
		r.Journeys = append(r.Journeys, ReportJourney{ID: j.ID, Name: j.Name, Version: v.Version})
	}

	dates, err := newDateStops(ctx, db, cfg.Journeys, cfg.Events, from, to)
	if err != nil {
		return nil, err
	}
	if err := eng.Reload(ctx); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	events := cfg.Events
	for len(events) > 0 && events[0].At().Before(from) {
		events = events[1:]
		r.EventsOutside++
	}
	first := true
	var lastOptOut time.Time // of the last SMS opt-out recorded
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := clock.Now()
		// The guardrail that acts on the numbers, as the server's
		// minute ticker would have run it by now: only an SMS opt-out
		// within its window can pause a step, and the simulator records
		// every one (inbound), so without one there is nothing to count.
		if !lastOptOut.IsZero() && !lastOptOut.Before(now.Add(-pol.OptOutPause.Over)) {
			paused, err := eng.CheckOptOutPauses(ctx)
			if err != nil {
				return nil, fmt.Errorf("sim: at %s: %w", now.Format(time.RFC3339), err)
			}
			for _, p := range paused {
				r.Paused = append(r.Paused, pausedStep(p))
			}
		}
		var batch []nudge.IngestItem
		for len(events) > 0 && !events[0].At().After(now) {
			batch = append(batch, events[0].Item)
			events = events[1:]
		}
		r.Events += len(batch)
		batch, optOut, err := inbound(ctx, store, pol.Keywords, batch, now)
		if err != nil {
			return nil, err
		}
		if optOut.After(lastOptOut) {
			lastOptOut = optOut
		}
		if err := ingestBatch(ctx, store, batch, now); err != nil {
			return nil, err
		}
		if err := store.step(ctx, eng, now, first || dates.at(now), first || len(batch) > 0); err != nil {
			return nil, fmt.Errorf("sim: at %s: %w", now.Format(time.RFC3339), err)
		}
		first = false
		if cfg.Progress != nil {
			cfg.Progress(now)
		}
		next := store.nextWake(now)
		if len(events) > 0 && (next.IsZero() || events[0].At().Before(next)) {
			next = events[0].At()
		}
		if d := dates.next(now); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
		if next.IsZero() || next.After(to) {
			break
		}
		clock.Set(next)
	}
	r.EventsOutside += len(events)
	if err := r.collect(ctx, db); err != nil {
		return nil, err
	}
	// A private store's last changes reach its file when it closes (its
	// transaction commits then): a caller that reads the file after the
	// run (Reports) must know they did.
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	return r, nil
}

func tempDir(dir string) (string, func(), error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, err
		}
		return dir, func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(filepath.Join(dir, "sim.db"+suffix))
			}
		}, nil
	}
	d, err := os.MkdirTemp("", "nudge-sim-")
	if err != nil {
		return "", nil, err
	}
	return d, func() { os.RemoveAll(d) }, nil
}

func importContacts(ctx context.Context, db nudge.Store, cfg Config, n *ingest.ContactNormalizer, clock *Clock, r *Report) error {
	name := cmp.Or(cfg.ContactsName, "contacts.csv")
	cr, err := ingest.NewCSVReader(cfg.Contacts, cfg.Mapping, n)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sum, err := ingest.Import(ctx, db, cr, ingest.ImportOptions{Now: clock.Now, MaxErrors: 20})
	if err != nil {
		return fmt.Errorf("import %s: %w", name, err)
	}
	r.ContactsImported = sum.Imported + sum.Updated
	for _, e := range sum.Errors {
		r.ImportErrors = append(r.ImportErrors, fmt.Sprintf("%s: %v", name, &e))
	}
	r.ImportRejected = sum.Rejected
	return nil
}

// ingestBatch stores events as the API would, in batches.
func ingestBatch(ctx context.Context, db nudge.Store, items []nudge.IngestItem, now time.Time) error {
	for len(items) > 0 {
		k := min(len(items), 1000)
		if _, err := db.EventIngest(ctx, items[:k], now); err != nil {
			return fmt.Errorf("sim: ingest events at %s: %w", now.Format(time.RFC3339), err)
		}
		items = items[k:]
	}
	return nil
}

// step does the engine's work at now, as RunOnce would, but without the
// claims that would find nothing: journeys do not change during a replay,
// the inbox only has work after events were ingested or a transition
// changed a contact, and enrollments are due only at noted wake times.
func (s *simStore) step(ctx context.Context, eng *engine.Engine, now time.Time, dates, inbox bool) error {
	if dates {
		if _, err := eng.ProcessDates(ctx); err != nil {
			return err
		}
	}
	for {
		s.patched.Store(false)
		a := 0
		if inbox {
			var err error
			if a, err = eng.ProcessInbox(ctx); err != nil {
				return err
			}
		}
		if s.dueBy(now) {
			b, err := eng.ProcessDue(ctx)
			if err != nil {
				return err
			}
			// A claim of fewer than a batch took every due enrollment:
			// no need to ask again. (One that failed is logged by the
			// engine and waits for its claim to expire, as in the server.)
			if b < batchSize {
				s.dropThrough(now)
			}
		}
		inbox = a >= batchSize || s.patched.Load()
		if !inbox && !s.dueBy(now) {
			return nil
		}
	}
}

// simStore is the store the engine sees. It notes the wake time of every
// waiting enrollment the engine commits, so the replay knows where to move
// the clock without scanning enrollments, and it models delivery: a queued
// message whose time has come counts as handed to its provider, so it is
// not among the queued messages a conversion cancels.
type simStore struct {
	*sqlite.DB // concrete, so that the store's optional methods reach the engine
	clock      *Clock

	patched atomic.Bool // a commit changed a contact: the inbox has work

	// journeys and pauses are the store's lists as last read: nothing
	// but this store's own JourneyPublish and StepPausePut changes them
	// during a replay, and each drops its list.
	cmu      sync.Mutex
	journeys []*nudge.Journey
	pauses   []*nudge.StepPause
	pausesOK bool

	// facts are the guardrails' reads of consent and suppressions by
	// contact, as last read (see ConsentListMany).
	fmu   sync.Mutex
	facts map[string]*contactFacts
	// factsGen counts the drops of facts. A read of the store keeps what
	// it read only if no drop came while it read: the engine computes a
	// batch while the one before commits, and a read that began before a
	// commit changed a contact's addresses or consent would otherwise keep
	// the old facts after the commit dropped them.
	factsGen uint64

	mu    sync.Mutex
	wakes timeHeap
	// later holds the enrollments with a message made available after the
	// time it was committed at (deferred): the only ones with messages a
	// conversion could still cancel.
	later map[string]bool
}

func (s *simStore) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	c = s.delivered(c, now)
	err := s.DB.EngineCommit(ctx, c, now)
	// Dropped after the write: a read of the old consent that overlapped
	// it is not kept (see factsGen).
	if len(c.ContactPatches) > 0 {
		s.fmu.Lock()
		for _, p := range c.ContactPatches {
			if movesAddress(p) {
				s.consentChanged(p.ID)
			}
		}
		s.fmu.Unlock()
	}
	if err != nil {
		return err
	}
	if len(c.ContactPatches) > 0 {
		s.patched.Store(true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, en := range c.Enrollments {
		if en.State == nudge.EnrollmentWaiting && !en.WakeAt.IsZero() {
			heap.Push(&s.wakes, en.WakeAt)
		}
	}
	return nil
}

// contactFacts are a contact's consent states and suppressions as the
// store returned them; consentOK and suppOK say which were read, and
// suppressions are those of the contact's email and phone as they were.
type contactFacts struct {
	consent      []*nudge.ConsentState
	consentOK    bool
	supp         []*nudge.Suppression
	suppOK       bool
	email, phone string
}

// fact returns (creating) the cached facts of contact id; s.fmu is held.
func (s *simStore) fact(id string) *contactFacts {
	if s.facts == nil {
		s.facts = map[string]*contactFacts{}
	}
	f := s.facts[id]
	if f == nil {
		f = &contactFacts{}
		s.facts[id] = f
	}
	return f
}

// ConsentListMany is the store's, read once per contact until something
// that can change it: a consent record (any, since contacts may share an
// address), a change to the contact's addresses (the store reads the
// consent of its email and phone) by an event or a commit. The engine
// reads it for every batch. Contacts the store does not have are not kept.
func (s *simStore) ConsentListMany(ctx context.Context, contactIDs []string) (map[string][]*nudge.ConsentState, error) {
	out := make(map[string][]*nudge.ConsentState, len(contactIDs))
	var miss []string
	s.fmu.Lock()
	for _, id := range contactIDs {
		if f := s.facts[id]; f != nil && f.consentOK {
			out[id] = cloneAll(f.consent)
		} else {
			miss = append(miss, id)
		}
	}
	gen := s.factsGen
	s.fmu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	got, err := s.DB.ConsentListMany(ctx, miss)
	if err != nil {
		return nil, err
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	keep := gen == s.factsGen
	for id, list := range got {
		if keep {
			f := s.fact(id)
			f.consent, f.consentOK = cloneAll(list), true
		}
		out[id] = list
	}
	return out, nil
}

// ConsentListFor is ConsentListMany of the contacts' ids: the engine's
// guardrails call it when the store has it (the embedded *sqlite.DB
// does), and it must not read past the cache.
func (s *simStore) ConsentListFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.ConsentState, error) {
	ids := make([]string, 0, len(contacts))
	for _, c := range contacts {
		if c != nil {
			ids = append(ids, c.ID)
		}
	}
	return s.ConsentListMany(ctx, ids)
}

// SuppressionsFor is the store's, read once per contact and addresses:
// nothing in a replay adds a suppression.
func (s *simStore) SuppressionsFor(ctx context.Context, contacts []*nudge.Contact) (map[string][]*nudge.Suppression, error) {
	out := make(map[string][]*nudge.Suppression, len(contacts))
	var miss []*nudge.Contact
	s.fmu.Lock()
	for _, c := range contacts {
		if c == nil {
			continue
		}
		if f := s.facts[c.ID]; f != nil && f.suppOK && f.email == c.Email && f.phone == c.Phone {
			if len(f.supp) > 0 {
				out[c.ID] = cloneAll(f.supp)
			}
		} else {
			miss = append(miss, c)
		}
	}
	gen := s.factsGen
	s.fmu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	got, err := s.DB.SuppressionsFor(ctx, miss)
	if err != nil {
		return nil, err
	}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	keep := gen == s.factsGen
	for _, c := range miss {
		if keep {
			f := s.fact(c.ID)
			f.supp, f.suppOK, f.email, f.phone = cloneAll(got[c.ID]), true, c.Email, c.Phone
		}
		if list, ok := got[c.ID]; ok {
			out[c.ID] = list
		}
	}
	return out, nil
}

// cloneAll copies a list and what its entries point to.
func cloneAll[T any](list []*T) []*T {
	if list == nil {
		return nil
	}
	out := make([]*T, len(list))
	for i, p := range list {
		v := *p
		out[i] = &v
	}
	return out
}

// movesAddress reports whether a patch may change a contact's email or
// phone, and so the consent the store reads for it.
func movesAddress(p *nudge.ContactPatch) bool {
	return p != nil && (p.Email != nil || p.Phone != nil)
}

// consentChanged drops the consent read of contact id; s.fmu is held.
// Its suppressions are kept, by its addresses.
func (s *simStore) consentChanged(id string) {
	s.factsGen++
	if f := s.facts[id]; f != nil {
		f.consent, f.consentOK = nil, false
	}
}

// ConsentRecord is the store's; every contact's consent is read again.
func (s *simStore) ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error) {
	res, err := s.DB.ConsentRecord(ctx, ps, now)
	s.fmu.Lock()
	s.factsGen++
	for _, f := range s.facts {
		f.consent, f.consentOK = nil, false
	}
	s.fmu.Unlock()
	return res, err
}

// EventIngest is the store's; the consent of the contacts whose addresses
// it may change (an identify's email or phone) is read again. A track that
// creates a contact changes nothing read before: ConsentListMany keeps
// only contacts that exist.
func (s *simStore) EventIngest(ctx context.Context, items []nudge.IngestItem, now time.Time) (*nudge.IngestResult, error) {
	res, err := s.DB.EventIngest(ctx, items, now)
	s.fmu.Lock()
	for _, it := range items {
		if it.Event != nil && movesAddress(it.Patch) {
			s.consentChanged(it.Event.ContactID)
		}
	}
	s.fmu.Unlock()
	return res, err
}

// JourneyPublish is the store's; the next JourneyList reads the store.
func (s *simStore) JourneyPublish(ctx context.Context, p *nudge.JourneyPublishParams, now time.Time) (*nudge.JourneyVersion, bool, error) {
	s.cmu.Lock()
	s.journeys = nil
	s.cmu.Unlock()
	return s.DB.JourneyPublish(ctx, p, now)
}

// JourneyList is the store's, read once after each publish: the engine
// asks for it with every claim of inbox items.
func (s *simStore) JourneyList(ctx context.Context) ([]*nudge.Journey, error) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.journeys == nil {
		list, err := s.DB.JourneyList(ctx)
		if err != nil {
			return nil, err
		}
		s.journeys = list
	}
	return slices.Clone(s.journeys), nil
}

// StepPausePut is the store's; the next StepPauseList reads the store.
func (s *simStore) StepPausePut(ctx context.Context, p *nudge.StepPause) (bool, error) {
	s.cmu.Lock()
	s.pauses, s.pausesOK = nil, false
	s.cmu.Unlock()
	return s.DB.StepPausePut(ctx, p)
}

// StepPauseList is the store's; the list of the pauses that hold, which
// the engine reads for every batch, is read once after each change.
func (s *simStore) StepPauseList(ctx context.Context, p *nudge.StepPauseListParams) ([]*nudge.StepPause, error) {
	if !p.Active || p.JourneyID != "" {
		return s.DB.StepPauseList(ctx, p)
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if !s.pausesOK {
		list, err := s.DB.StepPauseList(ctx, p)
		if err != nil {
			return nil, err
		}
		s.pauses, s.pausesOK = list, true
	}
	return slices.Clone(s.pauses), nil
}

func (s *simStore) MessageList(ctx context.Context, p *nudge.MessageListParams) ([]*nudge.Message, error) {
	if p.Status == nudge.MessageQueued && p.EnrollmentID != "" {
		s.mu.Lock()
		later := s.later[p.EnrollmentID]
		s.mu.Unlock()
		if !later {
			return nil, nil // every message of it was available, so delivered
		}
	}
	ms, err := s.DB.MessageList(ctx, p)
	if err != nil || p.Status != nudge.MessageQueued {
		return ms, err
	}
	now := s.clock.Now()
	out := ms[:0]
	for _, m := range ms {
		if m.AvailableAt.After(now) {
			out = append(out, m)
		}
	}
	return out, nil
}

// MessageRecent is the store's, with the simulator's delivery model: a
// message whose time has come counts as sent, so the guardrails' sentences
// say "sent 11:00" rather than "queued for 11:00".
func (s *simStore) MessageRecent(ctx context.Context, contactIDs []string, since time.Time) (map[string][]*nudge.Message, error) {
	ms, err := s.DB.MessageRecent(ctx, contactIDs, since)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	for _, list := range ms {
		for _, m := range list {
			if m.Status == nudge.MessageQueued && !m.AvailableAt.After(now) {
				m.Status = nudge.MessageSent
			}
		}
	}
	return ms, nil
}

// nextWake is the earliest noted wake time after now. Wake times at or
// before now were handled by the last run; a noted time whose enrollment
// moved on since only costs one idle run.
func (s *simStore) nextWake(now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.wakes) > 0 && !s.wakes[0].After(now) {
		heap.Pop(&s.wakes)
	}
	if len(s.wakes) == 0 {
		return time.Time{}
	}
	return s.wakes[0]
}

// dueBy reports whether a noted wake time is at or before now.
func (s *simStore) dueBy(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wakes) > 0 && !s.wakes[0].After(now)
}

// dropThrough forgets the wake times at or before now: nothing is due.
func (s *simStore) dropThrough(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.wakes) > 0 && !s.wakes[0].After(now) {
		heap.Pop(&s.wakes)
	}
}

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// delivered applies the simulator's delivery model to a commit: it notes
// the enrollments the commit queues a message for that is available only
// later than now (deferred), and leaves out the cancellations of every
// other enrollment: all their messages were available by now, so handed to
// their provider, and the report counts them sent, as a live run would. An
// enrollment with a deferred message keeps its cancellation, which then
// also takes its messages already available (the store cancels by
// enrollment). (A deferred message of a commit that then fails is noted
// all the same: its enrollment's cancellations are kept, as outside the
// simulator.) c is not changed; a copy is returned when anything is left out.
func (s *simStore) delivered(c *nudge.EngineCommit, now time.Time) *nudge.EngineCommit {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range c.Messages {
		if m.AvailableAt.After(now) {
			if s.later == nil {
				s.later = map[string]bool{}
			}
			s.later[m.EnrollmentID] = true
		}
	}
	if len(c.CancelMessages) == 0 {
		return c
	}
	keep := slices.DeleteFunc(slices.Clone(c.CancelMessages), func(id string) bool { return !s.later[id] })
	if len(keep) == len(c.CancelMessages) {
		return c
	}
	cp := *c
	cp.CancelMessages = keep
	return &cp
}
