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
	DefaultQueue       = 1024
	DefaultCacheTTL    = 10 * time.Second
)

// DispatchStore is what a Dispatcher needs of the store.
type DispatchStore interface {
	WebhookList(ctx context.Context) ([]*nudge.WebhookSubscription, error)
	WebhookDeliveryLog(ctx context.Context, ds []*nudge.WebhookDelivery) error
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
	Queue       int           // events waiting for a worker; default DefaultQueue
	CacheTTL    time.Duration // how long the subscription list is reused; default DefaultCacheTTL
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
// log. Emit never blocks on the network.
//
// Retries wait in memory: events not yet delivered when the process stops
// are lost (their attempts so far are in the log), as are events emitted
// while the queue is full (logged as such).
type Dispatcher struct {
	cfg   DispatcherConfig
	log   *slog.Logger
	queue chan *job

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	subs    []*nudge.WebhookSubscription
	fetched time.Time
	timers  map[*time.Timer]struct{}
}

type job struct {
	sub     *nudge.WebhookSubscription
	ev      *Event
	body    []byte
	attempt int
}

// NewDispatcher returns a running Dispatcher; Close stops it.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: a dispatcher needs a store and a sender")
	}
	if cfg.Attempts < 0 || cfg.Concurrency < 0 || cfg.Queue < 0 || cfg.CacheTTL < 0 {
		return nil, nudge.Errorf(nudge.EINVALID, "webhook: attempts, concurrency, queue and cache TTL must not be negative")
	}
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Attempts = cmp.Or(cfg.Attempts, DefaultAttempts)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.Queue = cmp.Or(cfg.Queue, DefaultQueue)
	cfg.CacheTTL = cmp.Or(cfg.CacheTTL, DefaultCacheTTL)
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultDispatchBackoff
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, queue: make(chan *job, cfg.Queue),
		ctx: ctx, cancel: cancel, timers: map[*time.Timer]struct{}{}}
	for range cfg.Concurrency {
		d.wg.Go(d.work)
	}
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

// Close stops the workers and pending retries, waiting for calls in flight.
func (d *Dispatcher) Close() {
	d.cancel()
	d.mu.Lock()
	for t := range d.timers {
		t.Stop()
	}
	d.mu.Unlock()
	d.wg.Wait()
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

// Emit queues ev for every subscription that chose its type.
func (d *Dispatcher) Emit(ctx context.Context, ev Event) {
	if ev.At.IsZero() {
		ev.At = d.cfg.Clock.Now()
	}
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
		d.enqueue(&job{sub: s, ev: &ev, body: body, attempt: 1})
	}
}

func (d *Dispatcher) enqueue(j *job) {
	if d.ctx.Err() != nil {
		return
	}
	select {
	case d.queue <- j:
	default:
		d.log.WarnContext(d.ctx, "webhook: queue full; event dropped", "subscription_id", j.sub.ID,
			"event_id", j.ev.ID, "event", j.ev.Type, "attempt", j.attempt)
		d.record(j, 0, 0, errors.New("dropped: the dispatch queue was full"), time.Time{})
	}
}

func (d *Dispatcher) work() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case j := <-d.queue:
			d.call(j)
		}
	}
}

// call makes one attempt and schedules the next when it may help.
func (d *Dispatcher) call(j *job) {
	start := time.Now()
	code, err := d.cfg.Sender.Post(d.ctx, j.sub.URL, j.sub.Secret, j.ev.ID, j.ev.Type, j.body)
	took := time.Since(start)
	if err == nil {
		d.record(j, code, took, nil, time.Time{})
		return
	}
	if d.ctx.Err() != nil {
		return // closing: the call was cut short, not refused
	}
	var se *nudge.SendError
	retry := j.attempt < d.cfg.Attempts && (!errors.As(err, &se) || !se.Permanent)
	if !retry {
		d.record(j, code, took, err, time.Time{})
		d.log.WarnContext(d.ctx, "webhook: event given up", "subscription_id", j.sub.ID, "event_id", j.ev.ID,
			"event", j.ev.Type, "attempt", j.attempt, "error", err)
		return
	}
	delay := d.cfg.Backoff(j.attempt, j.ev.ID)
	if se != nil {
		delay = max(delay, se.RetryAfter)
	}
	d.record(j, code, took, err, d.cfg.Clock.Now().Add(delay))
	next := &job{sub: j.sub, ev: j.ev, body: j.body, attempt: j.attempt + 1}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		d.mu.Lock()
		delete(d.timers, t)
		d.mu.Unlock()
		d.enqueue(next)
	})
	d.timers[t] = struct{}{}
}

// record appends an attempt to the delivery log.
func (d *Dispatcher) record(j *job, code int, took time.Duration, err error, next time.Time) {
	e := &nudge.WebhookDelivery{SubscriptionID: j.sub.ID, EventID: j.ev.ID, Event: j.ev.Type, Attempt: j.attempt,
		StatusCode: code, OK: err == nil, Duration: took.Milliseconds(), NextAttemptAt: next, At: d.cfg.Clock.Now()}
	if err != nil {
		e.Error = err.Error()
	}
	// The log outlives a closing dispatcher's context.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 5*time.Second)
	defer cancel()
	if err := d.cfg.Store.WebhookDeliveryLog(ctx, []*nudge.WebhookDelivery{e}); err != nil {
		d.log.WarnContext(ctx, "webhook: delivery not logged", "subscription_id", j.sub.ID, "event_id", j.ev.ID, "error", err)
	}
}
