package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// Defaults of DispatcherConfig.
const (
	DefaultAttempts    = 6
	DefaultConcurrency = 4
	DefaultCacheTTL    = 10 * time.Second
	DefaultPoll        = time.Second
	DefaultLease       = 2 * time.Minute
	DefaultBatch       = 100
	// DefaultUnstored is how many deliveries the store refused to take
	// a Dispatcher holds in memory to store again.
	DefaultUnstored = 10000
)

// DispatchStore is what a Dispatcher needs of the store: the
// subscriptions, the delivery log, and the pending deliveries.
type DispatchStore interface {
	WebhookList(ctx context.Context) ([]*nudge.WebhookSubscription, error)
	WebhookDeliveryLog(ctx context.Context, ds []*nudge.WebhookDelivery) error
	WebhookEnqueue(ctx context.Context, ps []*nudge.WebhookPending, now time.Time) error
	WebhookClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.WebhookPending, error)
	WebhookSettle(ctx context.Context, ss []*nudge.WebhookSettle, now time.Time) error
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Store  DispatchStore // required
	Sender *Sender       // required: its SSRF guard and timeouts apply; each call is signed with its subscription's secret
	Clock  nudge.Clock   // default nudge.SystemClock
	Logger *slog.Logger  // default slog.Default()
	// Attempts is how many calls an event gets per subscription before it
	// is given up (logged, not retried); default DefaultAttempts.
	Attempts int
	// Backoff is the delay before attempt n+1 after attempt n failed
	// (n ≥ 1); default DefaultDispatchBackoff. A receiver's Retry-After is
	// honoured when longer.
	Backoff     func(attempt int, eventID string) time.Duration
	Concurrency int           // calls in flight; default DefaultConcurrency
	CacheTTL    time.Duration // how long the subscription list is reused; default DefaultCacheTTL
	// Poll is how often pending deliveries are looked for when no event
	// was emitted; default DefaultPoll.
	Poll time.Duration
	// Lease is how long a claimed delivery is held: a process that stops
	// mid-call leaves it to be claimed again after it; default DefaultLease.
	Lease time.Duration
	// Batch is how many pending deliveries one pass claims; default
	// DefaultBatch.
	Batch int
	// Unstored is how many deliveries the store refused (down, read-only,
	// disk full) are held in memory and offered to it again on every
	// pass; default DefaultUnstored. Past it the oldest are given up,
	// with an error logged for each event.
	Unstored int
}

// Event is one thing that happened, for the subscriptions that chose its
// Type.
type Event struct {
	ID   string    // stable: the same event emitted twice has the same ID (receivers deduplicate)
	Type string    // nudge.WebhookMessageSent, …
	At   time.Time // when it happened
	Data any       // the payload's "data": the message, the enrollment…
}

// payload is the JSON body of a subscription call.
type payload struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	Data      any       `json:"data"`
}

// Dispatcher delivers events to the webhook subscriptions that chose them,
// retrying with backoff and logging every attempt in the store's delivery
// log. Emit writes the deliveries to the store (nudge.WebhookPending) and
// returns; a loop claims them like the outbox, calls, and settles them.
// A restart, or a receiver down for an hour, loses no stored event, and on
// PostgreSQL several nodes share the work. Only while the store refuses
// writes do events wait in memory (up to Unstored), stored again on each
// pass and once more at Close.
type Dispatcher struct {
	cfg  DispatcherConfig
	log  *slog.Logger
	wake chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	subs    []*nudge.WebhookSubscription
	fetched time.Time

	umu      sync.Mutex
	unstored []*nudge.WebhookPending // refused by the store, oldest first
}

// NewDispatcher returns a running Dispatcher; Close stops it.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: a dispatcher needs a store and a sender")
	}
	if cfg.Attempts < 0 || cfg.Concurrency < 0 || cfg.CacheTTL < 0 || cfg.Poll < 0 || cfg.Lease < 0 || cfg.Batch < 0 || cfg.Unstored < 0 {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: attempts, concurrency, cache TTL, poll, lease, batch and unstored must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Attempts = cmp.Or(cfg.Attempts, DefaultAttempts)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.CacheTTL = cmp.Or(cfg.CacheTTL, DefaultCacheTTL)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.Lease = cmp.Or(cfg.Lease, DefaultLease)
	cfg.Batch = cmp.Or(cfg.Batch, DefaultBatch)
	cfg.Unstored = cmp.Or(cfg.Unstored, DefaultUnstored)
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultDispatchBackoff
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
	d.wg.Go(d.loop)
	return d, nil
}

// DefaultDispatchBackoff is 10s·3^(attempt-1), capped at an hour, times a
// jitter between 0.75 and 1.25 drawn from the event id: 10s, 30s, 1.5m,
// 4.5m, 13.5m for the default six attempts.
func DefaultDispatchBackoff(attempt int, eventID string) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 3
	}
	d = min(d, time.Hour)
	h := fnv.New32a()
	h.Write([]byte(eventID))
	return time.Duration(float64(d) * (0.75 + float64(h.Sum32()%1000)/2000))
}

// Close stops the loop, waiting for calls in flight. What is still
// pending stays in the store for the next start; deliveries the store
// refused are offered to it once more, and logged as lost if it still
// refuses them.
func (d *Dispatcher) Close() {
	d.cancel()
	d.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !d.storeUnstored(ctx) {
		d.umu.Lock()
		defer d.umu.Unlock()
		for _, p := range d.unstored {
			d.log.ErrorContext(ctx, "webhook: event not stored before stopping; it will not be delivered",
				"event_id", p.EventID, "event", p.Event, "subscription", p.SubscriptionID)
		}
		d.unstored = nil
	}
}

// subscriptions returns the cached subscription list, refreshed every
// CacheTTL; a failed refresh keeps the old list.
func (d *Dispatcher) subscriptions(ctx context.Context) []*nudge.WebhookSubscription {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.cfg.Clock.Now()
	if !d.fetched.IsZero() && now.Sub(d.fetched) < d.cfg.CacheTTL {
		return d.subs
	}
	subs, err := d.cfg.Store.WebhookList(ctx)
	if err != nil {
		d.log.WarnContext(ctx, "webhook: subscriptions not read; using the last list", "error", err)
		return d.subs
	}
	d.subs, d.fetched = subs, now
	return subs
}

// Wants reports whether any subscription chose event type typ: emitters
// skip building an event nobody wants.
func (d *Dispatcher) Wants(ctx context.Context, typ string) bool {
	for _, s := range d.subscriptions(ctx) {
		if s.Wants(typ) {
			return true
		}
	}
	return false
}

// Emit stores ev for delivery to every subscription that chose its type.
// An event already pending for a subscription (the same ID) is kept once.
// If the store refuses the write, the deliveries wait in memory and are
// stored on a later pass (see DispatcherConfig.Unstored).
func (d *Dispatcher) Emit(ctx context.Context, ev Event) {
	now := d.cfg.Clock.Now()
	if ev.At.IsZero() {
		ev.At = now
	}
	var ps []*nudge.WebhookPending
	var body []byte
	for _, s := range d.subscriptions(ctx) {
		if !s.Wants(ev.Type) {
			continue
		}
		if body == nil {
			b, err := json.Marshal(payload{ID: ev.ID, Type: ev.Type, CreatedAt: ev.At.UTC(), Data: ev.Data})
			if err != nil {
				d.log.ErrorContext(ctx, "webhook: event not encoded", "event_id", ev.ID, "event", ev.Type, "error", err)
				return
			}
			body = b
		}
		ps = append(ps, &nudge.WebhookPending{SubscriptionID: s.ID, EventID: ev.ID, Event: ev.Type, Body: body, AvailableAt: now})
	}
	if len(ps) == 0 {
		return
	}
	// The event outlives a request that ends now.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Store.WebhookEnqueue(wctx, ps, now); err != nil {
		d.log.WarnContext(ctx, "webhook: event not stored yet; it will be stored again", "event_id", ev.ID, "event", ev.Type, "error", err)
		d.holdUnstored(ctx, ps)
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// holdUnstored keeps deliveries the store refused, after those already
// held, up to Unstored of them; past it the oldest are given up, each
// logged as an error.
func (d *Dispatcher) holdUnstored(ctx context.Context, ps []*nudge.WebhookPending) {
	d.umu.Lock()
	defer d.umu.Unlock()
	d.unstored = append(d.unstored, ps...)
	if over := len(d.unstored) - d.cfg.Unstored; over > 0 {
		for _, p := range d.unstored[:over] {
			d.log.ErrorContext(ctx, "webhook: too many events waiting for the store; this one will not be delivered",
				"event_id", p.EventID, "event", p.Event, "subscription", p.SubscriptionID, "waiting", d.cfg.Unstored)
		}
		d.unstored = d.unstored[over:]
	}
}

// storeUnstored offers the deliveries the store refused to it again, in
// one write, and reports whether none is left waiting. Each keeps the
// time it was emitted as its AvailableAt. The lock is not held during the
// write, so an Emit never waits on a store that hangs; what the store
// refuses again goes back before what was held meanwhile.
func (d *Dispatcher) storeUnstored(ctx context.Context) bool {
	d.umu.Lock()
	ps := d.unstored
	d.unstored = nil
	d.umu.Unlock()
	if len(ps) == 0 {
		return true
	}
	if err := d.cfg.Store.WebhookEnqueue(ctx, ps, d.cfg.Clock.Now()); err != nil {
		if ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook: waiting events still not stored", "events", len(ps), "error", err)
		}
		d.umu.Lock()
		held := d.unstored
		d.unstored = ps
		d.umu.Unlock()
		d.holdUnstored(ctx, held)
		return false
	}
	d.log.InfoContext(ctx, "webhook: waiting events stored", "events", len(ps))
	return true
}

// loop runs passes: at once after an Emit, every Poll otherwise, and
// again at once while a pass found work. Each pass first stores what the
// store refused before.
func (d *Dispatcher) loop() {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		d.storeUnstored(d.ctx)
		for d.ctx.Err() == nil && d.RunOnce(d.ctx) > 0 {
		}
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// RunOnce claims the pending deliveries that are due, makes one attempt at
// each (Concurrency at a time), logs the attempts and settles them. It
// returns how many it claimed.
func (d *Dispatcher) RunOnce(ctx context.Context) int {
	ps, err := d.cfg.Store.WebhookClaim(ctx, d.cfg.Clock.Now(), d.cfg.Batch, d.cfg.Lease)
	if err != nil {
		if ctx.Err() == nil {
			d.log.WarnContext(ctx, "webhook: pending deliveries not claimed", "error", err)
		}
		return 0
	}
	if len(ps) == 0 {
		return 0
	}
	logs := make([]*nudge.WebhookDelivery, len(ps))
	settles := make([]*nudge.WebhookSettle, len(ps))
	sem := make(chan struct{}, d.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, p := range ps {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			logs[i], settles[i] = d.call(ctx, p)
		})
	}
	wg.Wait()
	var ls []*nudge.WebhookDelivery
	var ss []*nudge.WebhookSettle
	for i := range ps {
		if settles[i] != nil { // nil: cut short by Close; the claim expires
			ls, ss = append(ls, logs[i]), append(ss, settles[i])
		}
	}
	// The outcomes outlive a closing dispatcher's context.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Store.WebhookDeliveryLog(wctx, ls); err != nil {
		d.log.WarnContext(ctx, "webhook: attempts not logged", "attempts", len(ls), "error", err)
	}
	if err := d.cfg.Store.WebhookSettle(wctx, ss, d.cfg.Clock.Now()); err != nil {
		// Their claims expire and they are tried again: a receiver may
		// get an event twice, and deduplicates on its id.
		d.log.WarnContext(ctx, "webhook: attempts not settled", "attempts", len(ss), "error", err)
	}
	return len(ps)
}

// call makes one attempt at p and says what follows: done, or a retry.
func (d *Dispatcher) call(ctx context.Context, p *nudge.WebhookPending) (*nudge.WebhookDelivery, *nudge.WebhookSettle) {
	attempt := p.Attempt + 1
	start := time.Now()
	code, err := d.cfg.Sender.Post(ctx, p.URL, p.Secret, p.EventID, p.Event, p.Body)
	took := time.Since(start)
	if err != nil && ctx.Err() != nil {
		return nil, nil // closing: the call was cut short, not refused
	}
	now := d.cfg.Clock.Now()
	e := &nudge.WebhookDelivery{SubscriptionID: p.SubscriptionID, EventID: p.EventID, Event: p.Event, Attempt: attempt,
		StatusCode: code, OK: err == nil, Duration: took.Milliseconds(), At: now}
	if err == nil {
		return e, &nudge.WebhookSettle{ID: p.ID, Done: true}
	}
	e.Error = err.Error()
	var se *nudge.SendError
	if attempt >= d.cfg.Attempts || (errors.As(err, &se) && se.Permanent) {
		d.log.WarnContext(ctx, "webhook: event given up", "subscription_id", p.SubscriptionID, "event_id", p.EventID,
			"event", p.Event, "attempt", attempt, "error", err)
		return e, &nudge.WebhookSettle{ID: p.ID, Done: true}
	}
	delay := d.cfg.Backoff(attempt, p.EventID)
	if se != nil {
		delay = max(delay, se.RetryAfter)
	}
	e.NextAttemptAt = now.Add(delay)
	return e, &nudge.WebhookSettle{ID: p.ID, Attempt: attempt, AvailableAt: e.NextAttemptAt}
}
