package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/journey"
	"github.com/nudge/nudge/policy"
)

// Store is what the engine needs of the store. (Until nudge.Store embeds
// the journey and engine seams, the engine names them itself.)
type Store interface {
	nudge.Store
	nudge.JourneyStore
	nudge.EngineStore
}

// Config configures an Engine.
type Config struct {
	Store  Store
	Clock  nudge.Clock  // default nudge.SystemClock
	Logger *slog.Logger // default: discard
	// NewID makes enrollment and message ids: unique, and sorting in
	// creation order. Default: the clock's time in milliseconds, a counter
	// and random bits. The simulator passes a counter so that its output is
	// the same from run to run.
	NewID func() string
	// Lease is how long a claim of inbox items or due enrollments lasts
	// before another process may take them over (default 1m).
	Lease time.Duration
	// Batch is how many inbox items or due enrollments one claim takes
	// (default 500).
	Batch int
	// Policy, when set, is the workspace policy in force (its Version is
	// recorded with every decision). Nil: the store's latest published
	// policy version, or policy.Default() (version 0) while there is none.
	// Either way every email and SMS passes the guardrails (see Guard);
	// there is no way to turn them off.
	Policy *policy.Policy
	// DateLookback is how far back the first date-trigger scan after a
	// start looks for trigger times it has not seen (default 24h).
	DateLookback time.Duration
}

// Engine runs journeys: it turns inbox items (events, contact changes), due
// waits and date triggers into enrollment transitions, each committed with
// its decisions and messages. An Engine is safe for concurrent use, and any
// number of engines may share one store (on PostgreSQL).
type Engine struct {
	store    Store
	clock    nudge.Clock
	log      *slog.Logger
	newID    func() string
	lease    time.Duration
	batch    int
	fixed    *policy.Policy
	lookback time.Duration
	wake     chan struct{}

	mu        sync.Mutex
	journeys  map[string]*loaded // by journey id
	order     []string           // journey ids in order
	loadedAt  bool
	lastDates time.Time

	// The policy in force, parsed once per version, and the policies of
	// steps with policy blocks (see stepPolicy).
	pmu   sync.Mutex
	def   *policy.Policy
	pol   *policy.Policy
	steps map[stepKey]stepPolicy
}

// loaded is a journey's status and its parsed versions.
type loaded struct {
	meta     *nudge.Journey
	versions map[int64]*journey.Journey
}

// New returns an engine. It does no I/O: journeys are loaded by the first
// Reload or RunOnce.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: Config.Store is required")
	}
	if cfg.Lease < 0 || cfg.Batch < 0 || cfg.DateLookback < 0 {
		return nil, errors.New("engine: Lease, Batch and DateLookback must not be negative")
	}
	e := &Engine{
		store:    cfg.Store,
		clock:    cmp.Or[nudge.Clock](cfg.Clock, nudge.SystemClock{}),
		log:      cfg.Logger,
		newID:    cfg.NewID,
		lease:    cmp.Or(cfg.Lease, time.Minute),
		batch:    cmp.Or(cfg.Batch, 500),
		fixed:    cfg.Policy,
		lookback: cmp.Or(cfg.DateLookback, 24*time.Hour),
		wake:     make(chan struct{}, 1),
		journeys: map[string]*loaded{},
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.newID == nil {
		e.newID = newIDFunc(e.clock)
	}
	return e, nil
}

// newIDFunc makes ids of 32 hex digits: milliseconds of the clock (12), a
// counter (12) and random bits (8), so they sort in creation order within
// one process even when the clock stands still.
func newIDFunc(clock nudge.Clock) func() string {
	var (
		mu   sync.Mutex
		last int64
		seq  uint64
	)
	return func() string {
		ms := clock.Now().UnixMilli()
		mu.Lock()
		if ms > last {
			last = ms
		}
		seq++
		ms, n := last, seq
		mu.Unlock()
		var b [32]byte
		putHex(b[:12], uint64(ms))
		putHex(b[12:24], n)
		putHex(b[24:], uint64(rand.Uint32()))
		return string(b[:])
	}
}

// putHex writes the low bits of v to b as len(b) lower-case hex digits.
func putHex(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = "0123456789abcdef"[v&15]
		v >>= 4
	}
}

// Notify tells the loop that runs the engine that there may be work (an
// event was ingested, a journey published). It never blocks.
func (e *Engine) Notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Wake receives after Notify: the server's loop selects on it and on a
// timer, then calls RunOnce.
func (e *Engine) Wake() <-chan struct{} { return e.wake }

// Reload refreshes the journeys from the store: statuses, and the parsed
// latest version of each journey that changed. It is cheap when nothing
// changed (one list query); the server calls it after a publish or a pause,
// RunOnce before each run.
func (e *Engine) Reload(ctx context.Context) error {
	list, err := e.store.JourneyList(ctx)
	if err != nil {
		return fmt.Errorf("engine: reload journeys: %w", err)
	}
	e.mu.Lock()
	old := e.journeys
	e.mu.Unlock()
	next := make(map[string]*loaded, len(list))
	order := make([]string, 0, len(list))
	for _, m := range list {
		l := &loaded{meta: m, versions: map[int64]*journey.Journey{}}
		if o := old[m.ID]; o != nil {
			for v, j := range o.versions {
				l.versions[v] = j
			}
		}
		next[m.ID] = l
		order = append(order, m.ID)
		if m.Status == nudge.JourneyArchived || m.Version == 0 {
			continue
		}
		if _, ok := l.versions[m.Version]; !ok {
			j, err := e.parseVersion(ctx, m.ID, m.Version)
			if err != nil {
				e.log.ErrorContext(ctx, "engine: journey version does not parse; it takes no entries", "journey_id", m.ID, "version", m.Version, "err", err)
				continue
			}
			l.versions[m.Version] = j
		}
	}
	e.mu.Lock()
	e.journeys, e.order, e.loadedAt = next, order, true
	e.mu.Unlock()
	return nil
}

func (e *Engine) parseVersion(ctx context.Context, id string, version int64) (*journey.Journey, error) {
	v, err := e.store.JourneyVersionGet(ctx, id, version)
	if err != nil {
		return nil, err
	}
	return journey.Parse(fmt.Sprintf("%s@%d", id, version), v.Source, journey.Options{})
}

// ensureLoaded loads the journeys once.
func (e *Engine) ensureLoaded(ctx context.Context) error {
	e.mu.Lock()
	ok := e.loadedAt
	e.mu.Unlock()
	if ok {
		return nil
	}
	return e.Reload(ctx)
}

// version returns a journey's version (parsed, cached) and status.
func (e *Engine) version(ctx context.Context, id string, version int64) (*journey.Journey, *nudge.Journey, error) {
	e.mu.Lock()
	l := e.journeys[id]
	var j *journey.Journey
	if l != nil {
		j = l.versions[version]
	}
	e.mu.Unlock()
	if l == nil {
		m, err := e.store.JourneyGet(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		l = &loaded{meta: m, versions: map[int64]*journey.Journey{}}
		e.mu.Lock()
		if cur := e.journeys[id]; cur != nil {
			l = cur
		} else {
			e.journeys[id] = l
		}
		e.mu.Unlock()
	}
	if j != nil {
		return j, l.meta, nil
	}
	j, err := e.parseVersion(ctx, id, version)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	l.versions[version] = j
	e.mu.Unlock()
	return j, l.meta, nil
}

// live is an active journey's latest version, for entries.
type live struct {
	j       *journey.Journey
	version int64
}

// active returns the latest version of every active journey, by id.
func (e *Engine) active() []live {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []live
	for _, id := range e.order {
		l := e.journeys[id]
		if l.meta.Status != nudge.JourneyActive {
			continue
		}
		if j := l.versions[l.meta.Version]; j != nil {
			out = append(out, live{j, l.meta.Version})
		}
	}
	return out
}

// opts are the transition options of a batch, with its guardrails.
func (e *Engine) opts(g *guard) Options { return Options{NewID: e.newID, Policy: g.decide} }

// RunOnce does all the work there is now: it reloads the journeys, enters
// contacts whose date triggers came round, then processes the inbox and the
// due waits until neither has any left. It returns how many inbox items,
// transitions and date entries it handled. Tests and the simulator call it
// after moving their clock; the server calls it on a timer and on Wake.
func (e *Engine) RunOnce(ctx context.Context) (int, error) {
	if err := e.Reload(ctx); err != nil {
		return 0, err
	}
	total, err := e.ProcessDates(ctx)
	if err != nil {
		return total, err
	}
	// A pass asks again only if it did something and there may be more: a
	// claim came back full, or a commit changed contacts (which leaves
	// inbox items). Items ingested meanwhile come with a Notify, hence
	// another RunOnce; a claim of nothing but failures or releases does
	// not spin.
	for {
		a, moreA, err := e.processInbox(ctx)
		total += a
		if err != nil {
			return total, err
		}
		b, moreB, err := e.processDue(ctx)
		total += b
		if err != nil {
			return total, err
		}
		if !(moreA && a > 0) && !(moreB && b > 0) {
			return total, nil
		}
	}
}

// commitRetries is how often an inbox item is tried again after ECONFLICT
// (another process changed one of its enrollments meanwhile).
const commitRetries = 5

// queuedCount counts an enrollment's queued messages, for the sentence of a
// conversion or exit.
func (e *Engine) queuedCount(ctx context.Context, enrollmentID string) (int, error) {
	ms, err := e.store.MessageList(ctx, &nudge.MessageListParams{EnrollmentID: enrollmentID, Status: nudge.MessageQueued, Limit: 1000})
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

// add appends a transition to a commit.
func add(c *nudge.EngineCommit, tr *Transition) {
	if tr == nil {
		return
	}
	if tr.Enrollment != nil {
		c.Enrollments = append(c.Enrollments, tr.Enrollment)
	}
	c.Decisions = append(c.Decisions, tr.Decisions...)
	c.Messages = append(c.Messages, tr.Messages...)
	c.ContactPatches = append(c.ContactPatches, tr.Patches...)
	if tr.Cancel && tr.Enrollment != nil {
		c.CancelMessages = append(c.CancelMessages, tr.Enrollment.ID)
	}
}

// contactBatchGetter is a store that reads many contacts in one query
// (*sqlite.DB). The engine uses it when the store offers it, else one
// ContactGet per contact.
type contactBatchGetter interface {
	// ContactGetMany returns the contacts of ids that exist, by id.
	ContactGetMany(ctx context.Context, ids []string) (map[string]*nudge.Contact, error)
}

// contacts reads the contacts of ids (unique), by id; one that does not
// exist (erased meanwhile) is absent.
func (e *Engine) contacts(ctx context.Context, ids []string) (map[string]*nudge.Contact, error) {
	if g, ok := e.store.(contactBatchGetter); ok {
		return g.ContactGetMany(ctx, ids)
	}
	cs := make([]*nudge.Contact, len(ids))
	err := parallel(len(ids), func(i int) error {
		c, err := e.store.ContactGet(ctx, ids[i])
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			return nil
		}
		cs[i] = c
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*nudge.Contact, len(ids))
	for _, c := range cs {
		if c != nil {
			out[c.ID] = c
		}
	}
	return out, nil
}

// readers bounds the reads the engine runs at once for one batch: a batch's
// per-contact reads wait mostly for the database (PostgreSQL's round trips),
// not for this process.
const readers = 8

// parallel calls f(0) … f(n-1), up to readers at a time, and returns the
// first error (by index).
func parallel(n int, f func(i int) error) error {
	if n <= 1 {
		if n == 1 {
			return f(0)
		}
		return nil
	}
	errs := make([]error, n)
	var (
		wg   sync.WaitGroup
		next atomic.Int64
	)
	for range min(n, readers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// contactEnrollments lists all of a contact's enrollments, live and ended.
func (e *Engine) contactEnrollments(ctx context.Context, contactID string) ([]*nudge.Enrollment, error) {
	var out []*nudge.Enrollment
	after := ""
	for {
		page, err := e.store.EnrollmentList(ctx, &nudge.EnrollmentListParams{ContactID: contactID, AfterID: after, Limit: 10000})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < 10000 {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
