package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path"
	"reflect"
	"sync"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/policy"
	"github.com/nudge/nudge/template"
)

// Reasons recorded in a message's history (Detail "reason") when the
// worker, not the provider, ends or delays it.
const (
	ReasonMaxAge         = "max_age"         // older than Config.MaxAge
	ReasonNoAddress      = "no_address"      // the contact has no phone or email
	ReasonNoContact      = "no_contact"      // the contact no longer exists
	ReasonNoSender       = "no_sender"       // no Sender configured for the channel
	ReasonTemplateError  = "template_error"  // the template is missing or failed to render
	ReasonSMSLint        = "sms_lint"        // the rendered SMS cannot be sent (empty, too long)
	ReasonProvider       = "provider"        // the provider refused (Detail "code")
	ReasonRetry          = "retry"           // a temporary refusal: requeued
	ReasonUnknown        = "outcome_unknown" // the call ended without an answer
	ReasonStuck          = "stuck"           // found sending after its claim expired
	ReasonNotImplemented = "no_webhook_sender"
	// ReasonRateLimit: the sender's rate limits leave no slot before the
	// message's maximum age (Config.Limits).
	ReasonRateLimit = "rate_limit"
)

// Defaults of Config.
const (
	DefaultLease = 5 * time.Minute
	DefaultBatch = 200
	// DefaultClaims: a pass goes on from one full batch to the next, 8
	// at most, so that its senders need not wait for a new pass's claim
	// and first reads (see deliver).
	DefaultClaims = 8
	// DefaultConcurrency is 32 provider calls at once: a message is marked
	// sending only for a free sender (markLoop), so this is also the most
	// messages a crash can leave with an unknown outcome, and more senders
	// let the marks of a burst share one commit.
	DefaultConcurrency = 32
	DefaultMaxAge      = 24 * time.Hour
	// WebhookPark is how far a webhook message without a sender is moved on.
	WebhookPark = time.Hour
)

// Store is what the worker needs of the store.
type Store interface {
	nudge.DeliveryStore
	// ProviderStore: what each pass saw of its providers, one report per
	// provider per pass (the settings page shows it).
	nudge.ProviderStore
	ContactGetMany(ctx context.Context, ids []string) (map[string]*nudge.Contact, error)
	EnrollmentGetMany(ctx context.Context, ids []string) (map[string]*nudge.Enrollment, error)
	JourneyGet(ctx context.Context, id string) (*nudge.Journey, error)
	ConsentRecord(ctx context.Context, ps []*nudge.ConsentRecordParams, now time.Time) ([]nudge.ConsentRecordResult, error)
	SuppressionAdd(ctx context.Context, ps []*nudge.SuppressionAddParams, now time.Time) ([]*nudge.Suppression, error)
	// MessageRecent tells who has had a marketing text before (the
	// opt-out notice on the first one).
	MessageRecent(ctx context.Context, contactIDs []string, since time.Time) (map[string][]*nudge.Message, error)
}

// Config configures a Worker.
type Config struct {
	Store  Store       // required
	Clock  nudge.Clock // default nudge.SystemClock
	Logger *slog.Logger
	// Senders by channel (nudge.ChannelEmail, nudge.ChannelSMS,
	// nudge.ChannelWebhook). A message of a channel without a sender
	// fails with reason no_sender (webhook: parked, see the package doc).
	Senders   map[string]nudge.Sender
	Templates *template.Set // required when email or SMS senders are set
	// From is the sender by channel (a phone number or messaging service,
	// an email address); "" leaves the Sender's own default.
	From map[string]string
	// StatusCallback is the URL providers call back with delivery reports,
	// by channel; "" for none.
	StatusCallback map[string]string
	// Prepare, when set, completes an Outbound before it is sent (email
	// List-Unsubscribe headers, …). An error fails the message with the
	// error's text.
	Prepare func(ctx context.Context, m *nudge.Message, c *nudge.Contact, o *nudge.Outbound) error
	// Recheck is the dispatch-time re-check of goal, exit, consent and
	// suppression, asked once per pass for the claimed messages that got
	// that far (ms, with their contacts and enrollments by id, as the pass
	// read them): for each message in order, the reason that cancels it,
	// or "" to let it go. nil allows. (engine.Engine's RecheckMany reads
	// the rest of the facts of them all at once.)
	Recheck func(ctx context.Context, ms []*nudge.Message, contacts map[string]*nudge.Contact, enrollments map[string]*nudge.Enrollment) (reasons []string)
	// SMSLimits: a rendered SMS with lint errors fails (sms_lint).
	SMSLimits template.SMSLimits
	// Policy returns the workspace policy in force, read once per pass for
	// its SMS rules: the opt-out notice of marketing texts
	// (policy.OptOutNotice) and the journeys' SMS budgets
	// (policy.SMSBudgets). nil: no notice is added and no budget applies.
	Policy func(ctx context.Context) (*policy.Policy, error)

	Lease time.Duration // a claim's length; default DefaultLease; must exceed a batch's sends
	Batch int           // messages per claim; default DefaultBatch
	// Claims is the most batches one pass claims: it claims again only
	// while a claim comes back full. Default DefaultClaims; 1 makes a pass
	// one claim.
	Claims      int
	Concurrency int           // messages in flight; default DefaultConcurrency
	MaxAge      time.Duration // default DefaultMaxAge: an older message fails (max_age)
	// Backoff is the delay before retry attempt (1 after the first call);
	// default DefaultBackoff with jitter from the message id.
	Backoff func(attempt int) time.Duration
	// EmailAtLeastOnce requeues email whose outcome is unknown instead of
	// marking it outcome_unknown: a duplicate email beats a lost one.
	// SMS is always at-most-once.
	EmailAtLeastOnce bool
	// Limits caps messages per second by sending address, provider and
	// workspace; the zero value is no limit. A message without a free
	// slot is deferred to its slot, not waited for (see RateLimits).
	Limits RateLimits
	// Slots, when set, keeps the limits' slots in the store, shared by
	// every worker on it (several nodes on one PostgreSQL); nil keeps
	// them in this Worker's memory.
	Slots nudge.RateSlotStore
}

// Worker delivers the outbox. RunOnce may be called from several
// goroutines or processes: claims keep them apart.
type Worker struct {
	cfg Config
	log *slog.Logger

	limits *limiter // nil: no limits
	budget budgetBook
	// providers names each channel's provider in its status reports.
	providers map[string]string

	mu       sync.Mutex
	journeys map[string]string // journey id → name
}

// New returns a Worker, or an EINVALID error.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil {
		return nil, nudge.Errorf(nudge.EINVALID, "delivery: a store is required")
	}
	for ch, s := range cfg.Senders {
		if s == nil {
			return nil, nudge.Errorf(nudge.EINVALID, "delivery: the %s sender is nil", ch)
		}
		if ch != nudge.ChannelWebhook && cfg.Templates == nil {
			return nil, nudge.Errorf(nudge.EINVALID, "delivery: templates are required to send %s", ch)
		}
	}
	if cfg.Lease < 0 || cfg.Batch < 0 || cfg.Claims < 0 || cfg.Concurrency < 0 || cfg.MaxAge < 0 {
		return nil, nudge.Errorf(nudge.EINVALID, "delivery: lease, batch, claims, concurrency and max age must not be negative")
	}
	if err := cfg.Limits.check(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Lease = cmp.Or(cfg.Lease, DefaultLease)
	cfg.Batch = cmp.Or(cfg.Batch, DefaultBatch)
	cfg.Claims = cmp.Or(cfg.Claims, DefaultClaims)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.MaxAge = cmp.Or(cfg.MaxAge, DefaultMaxAge)
	providers := map[string]string{}
	for ch, s := range cfg.Senders {
		providers[ch] = ProviderName(s)
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, journeys: map[string]string{}, limits: newLimiter(cfg.Limits),
		providers: providers}
	w.limits.share(cfg.Slots, cfg.Logger)
	return w, nil
}

// ProviderName is how a sender is named in provider status reports: its
// Provider method's answer if it has one, else the name of the package
// that defines it ("twilio", "kannel", "smtp", "logsink").
func ProviderName(s nudge.Sender) string {
	if p, ok := s.(interface{ Provider() string }); ok {
		return p.Provider()
	}
	t := reflect.TypeOf(s)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return cmp.Or(path.Base(t.PkgPath()), t.Name(), "unknown")
}

// DefaultBackoff is 30s·2^(attempt-1), capped at an hour, times a jitter
// between 0.75 and 1.25 drawn from the message id: retries of many
// messages refused together spread out, and a message's delays are the
// same on every run (the simulator replays them).
func DefaultBackoff(attempt int, messageID string) time.Duration {
	d := 30 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	h := fnv.New32a()
	h.Write([]byte(messageID))
	j := 0.75 + 0.5*float64(h.Sum32()%1000)/1000
	return min(time.Duration(float64(min(d, time.Hour))*j), time.Hour)
}

func (w *Worker) backoff(attempt int, id string) time.Duration {
	if w.cfg.Backoff != nil {
		return w.cfg.Backoff(attempt)
	}
	return DefaultBackoff(attempt, id)
}

// RunOnce recovers stuck messages, then claims and delivers one batch. It
// returns how many messages it handled (recovered and claimed); 0 means
// there was nothing to do. An error is a store failure: what was decided
// before it is kept, and the messages it left sending are recovered later.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	n, err := w.recover(ctx)
	if err != nil {
		return n, err
	}
	msgs, err := w.claim(ctx)
	if err != nil {
		return n, err
	}
	if len(msgs) == 0 {
		return n, nil
	}
	k, err := w.deliver(ctx, msgs)
	return n + k, err
}

func (w *Worker) claim(ctx context.Context) ([]*nudge.Message, error) {
	msgs, err := w.cfg.Store.MessageClaim(ctx, w.cfg.Clock.Now(), w.cfg.Batch, w.cfg.Lease)
	if err != nil {
		return nil, fmt.Errorf("delivery: claim: %w", err)
	}
	return msgs, nil
}

// recover settles messages left sending by a process that died.
func (w *Worker) recover(ctx context.Context) (int, error) {
	now := w.cfg.Clock.Now()
	stuck, err := w.cfg.Store.MessageStuck(ctx, now, w.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("delivery: stuck messages: %w", err)
	}
	if len(stuck) == 0 {
		return 0, nil
	}
	us := make([]*nudge.MessageUpdate, len(stuck))
	for i, m := range stuck {
		us[i] = w.unknown(m, now, ReasonStuck, "the claim expired while the message was sending: the process stopped during the provider call")
		w.log.WarnContext(ctx, "delivery: message outcome unknown",
			"message_id", m.ID, "channel", m.Channel, "requeued", us[i].Requeue)
	}
	if _, err := w.cfg.Store.MessageUpdate(ctx, us, now); err != nil {
		return 0, fmt.Errorf("delivery: recover stuck messages: %w", err)
	}
	return len(stuck), nil
}

// unknown settles a message whose provider call ended without an answer:
// SMS is at-most-once; email is requeued if configured; a webhook is
// requeued (it carries its idempotency key for the receiver).
func (w *Worker) unknown(m *nudge.Message, now time.Time, reason, text string) *nudge.MessageUpdate {
	detail := map[string]any{"reason": reason, "error": text}
	if m.Channel == nudge.ChannelWebhook || (m.Channel == nudge.ChannelEmail && w.cfg.EmailAtLeastOnce) {
		if now.Sub(m.CreatedAt) <= w.cfg.MaxAge {
			detail["retry"] = "at_least_once"
			return &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageQueued, Requeue: true,
				AvailableAt: now, Error: text, Detail: detail}
		}
	}
	return &nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageOutcomeUnknown, Error: text, Detail: detail}
}

// batch collects what one pass decided. Outcomes ride along with the next
// group of sending marks (one transaction for both); the rest are written
// at the end of the pass.
type batch struct {
	mu      sync.Mutex
	updates []*nudge.MessageUpdate
	consent []*nudge.ConsentRecordParams
	suppr   []*nudge.SuppressionAddParams
	// providers: what the pass saw of each provider, by channel.
	providers map[string]*nudge.ProviderReport
}

// providerCall counts a provider call's answer: a success, or the error
// text (masked here: it may hold the recipient's address).
func (b *batch) providerCall(channel, provider string, at time.Time, errText string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.providers == nil {
		b.providers = map[string]*nudge.ProviderReport{}
	}
	r := b.providers[channel]
	if r == nil {
		r = &nudge.ProviderReport{Channel: channel, Provider: provider}
		b.providers[channel] = r
	}
	if errText == "" {
		r.Successes++
		if at.After(r.LastSuccessAt) {
			r.LastSuccessAt = at
		}
		return
	}
	r.Errors++
	if !at.Before(r.LastErrorAt) {
		r.LastErrorAt, r.LastError = at, nudge.MaskAddresses(errText)
	}
}

func (b *batch) add(u *nudge.MessageUpdate) {
	b.mu.Lock()
	b.updates = append(b.updates, u)
	b.mu.Unlock()
}

// take returns the outcomes recorded so far and forgets them.
func (b *batch) take() []*nudge.MessageUpdate {
	b.mu.Lock()
	defer b.mu.Unlock()
	us := b.updates
	b.updates = nil
	return us
}

// putBack returns outcomes that could not be written, to try again at the
// end of the pass.
func (b *batch) putBack(us []*nudge.MessageUpdate) {
	b.mu.Lock()
	b.updates = append(us, b.updates...)
	b.mu.Unlock()
}

// deliver takes a claimed batch through its checks and its provider
// calls, and returns how many messages the pass claimed. The batch is
// read and checked in parts, each twice the size of the one before from
// 2×Concurrency up, so that the senders start on the first part while the
// rest is read and re-checked (the reads and the re-check were a fifth of
// a pass during which no sender had work); and each part is re-checked
// just before its messages go, not when the batch was claimed. While its
// claims come back full, the pass claims again once its last part is read
// (Config.Claims in all): the next batch's claim and first reads then run
// while the senders finish this one's, where a new pass would start them
// with every sender idle.
func (w *Worker) deliver(ctx context.Context, msgs []*nudge.Message) (int, error) {
	sr, err := w.smsRules(ctx, msgs, true)
	if err != nil {
		return len(msgs), err // nothing was marked; the claims expire
	}
	var b batch
	parts := make(chan part, 1)
	type result struct {
		more int
		err  error
	}
	read := make(chan result, 1)
	go func() {
		defer close(parts)
		more, err := w.readParts(ctx, msgs, sr, &b, parts)
		read <- result{more, err}
	}()
	w.dispatch(ctx, parts, len(msgs), &b)
	r := <-read
	return len(msgs) + r.more, errors.Join(r.err, w.record(ctx, &b))
}

// readParts reads and checks msgs in parts for the senders, then claims
// the next batch, while the claims come back full, and returns how many
// messages it claimed beyond msgs. An error is a store failure: the rest
// is not sent; its claims expire and another pass tries again. What the
// parts before decided stands.
func (w *Worker) readParts(ctx context.Context, msgs []*nudge.Message, sr *smsRules, b *batch, parts chan<- part) (more int, err error) {
	size := 2 * w.cfg.Concurrency
	for claims := 1; ; claims++ {
		full := len(msgs) == w.cfg.Batch
		for len(msgs) > 0 {
			k := min(size, len(msgs))
			p, err := w.readPart(ctx, msgs[:k], sr, b)
			if err != nil {
				return more, err
			}
			if len(p.msgs) > 0 {
				parts <- p
			}
			msgs, size = msgs[k:], 2*size
		}
		if !full || claims >= w.cfg.Claims || ctx.Err() != nil {
			return more, nil
		}
		if msgs, err = w.claim(ctx); err != nil {
			return more, err
		}
		more += len(msgs)
		if len(msgs) == 0 {
			return more, nil
		}
		// The budgets are not read again from the store here: this pass's
		// earlier texts, spent in memory, may not all be marked yet.
		if sr, err = w.smsRules(ctx, msgs, false); err != nil {
			return more, err
		}
	}
}

// part is some of a batch, read and checked, with what was read for it.
type part struct {
	msgs []*nudge.Message
	p    *pass
}

// readPart reads what msgs need (contacts, enrollments, rate limit holds)
// and checks them; it returns the messages that passed, with what was
// read. An error is a store failure: nothing of msgs was marked.
func (w *Worker) readPart(ctx context.Context, msgs []*nudge.Message, sr *smsRules, b *batch) (part, error) {
	ids := make([]string, 0, len(msgs))
	seen := map[string]bool{}
	for _, m := range msgs {
		if !seen[m.ContactID] {
			seen[m.ContactID] = true
			ids = append(ids, m.ContactID)
		}
	}
	contacts, err := w.cfg.Store.ContactGetMany(ctx, ids)
	if err != nil {
		return part{}, fmt.Errorf("delivery: contacts: %w", err)
	}
	// The enrollments, in one read: the re-check reads their states, and
	// templates the events that started them.
	var enIDs []string
	for _, m := range msgs {
		if m.EnrollmentID != "" {
			enIDs = append(enIDs, m.EnrollmentID)
		}
	}
	ens, err := w.cfg.Store.EnrollmentGetMany(ctx, enIDs)
	if err != nil {
		// Rendering without the event would fail or mislead.
		return part{}, fmt.Errorf("delivery: enrollments: %w", err)
	}
	p := &pass{contacts: contacts, enrollments: ens, sms: sr}
	if msgs, err = w.check(ctx, msgs, p, b); err != nil {
		return part{}, err
	}
	if err := w.limits.take(ctx, msgs, w.cfg.Clock.Now()); err != nil {
		return part{}, fmt.Errorf("delivery: rate limit holds: %w", err)
	}
	return part{msgs: msgs, p: p}, nil
}

// dispatch takes the checked messages of parts through rendering, their
// sending marks and their provider calls, with at most n senders.
func (w *Worker) dispatch(ctx context.Context, parts <-chan part, n int, b *batch) {
	// Three stages, so that no stage waits on another's slowest member:
	// preparers check and render, the marker commits sending marks in
	// groups of what is ready, senders call the providers.
	c := max(1, min(w.cfg.Concurrency, n))
	work := make(chan item)
	ready := make(chan *job, c)
	// idle holds a token per sender that is free: a message is marked
	// sending only for a free sender, so at most c messages are ever
	// marked and not yet answered by their provider, and a crash leaves
	// at most c with an unknown outcome (at-most-once SMS are not sent
	// again: every extra mark would be a text lost).
	marked := make(chan *job)
	idle := make(chan struct{}, c)
	var prep, send sync.WaitGroup
	for range c {
		idle <- struct{}{}
		prep.Go(func() {
			for it := range work {
				if j := w.prepare(ctx, it.m, it.p, b); j != nil {
					ready <- j
				}
			}
		})
		send.Go(func() {
			for j := range marked {
				w.send(ctx, j, b)
				idle <- struct{}{}
			}
		})
	}
	go func() {
		w.markLoop(ctx, ready, marked, idle, b, c)
		close(marked)
	}()
	for pt := range parts {
		for _, m := range pt.msgs {
			work <- item{m: m, p: pt.p}
		}
	}
	close(work)
	prep.Wait()
	close(ready)
	send.Wait()
}

// item is a checked message on its way to a preparer.
type item struct {
	m *nudge.Message
	p *pass
}

// record writes what a pass decided and has not written yet.
func (w *Worker) record(ctx context.Context, b *batch) error {
	now := w.cfg.Clock.Now()
	var errs []error
	if len(b.updates) > 0 {
		if _, err := w.cfg.Store.MessageUpdate(ctx, b.updates, now); err != nil {
			errs = append(errs, fmt.Errorf("delivery: record outcomes: %w", err))
		}
	}
	if len(b.consent) > 0 {
		res, err := w.cfg.Store.ConsentRecord(ctx, b.consent, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("delivery: record provider opt-outs: %w", err))
		}
		for i, r := range res {
			if r.Err != nil {
				w.log.WarnContext(ctx, "delivery: provider opt-out not recorded in the consent ledger",
					"contact_id", b.consent[i].ContactID, "channel", b.consent[i].Channel, "error", r.Err)
			}
		}
	}
	if len(b.suppr) > 0 {
		if _, err := w.cfg.Store.SuppressionAdd(ctx, b.suppr, now); err != nil {
			errs = append(errs, fmt.Errorf("delivery: suppress opted-out addresses: %w", err))
		}
	}
	if len(b.providers) > 0 {
		rs := make([]*nudge.ProviderReport, 0, len(b.providers))
		for _, r := range b.providers {
			rs = append(rs, r)
		}
		if err := w.cfg.Store.ProviderRecord(ctx, rs, now); err != nil {
			errs = append(errs, fmt.Errorf("delivery: record provider status: %w", err))
		}
	}
	return errors.Join(errs...)
}

// pass is what one pass read for a part of its batch.
type pass struct {
	contacts map[string]*nudge.Contact
	// enrollments of the batch's messages, by id; an erased one is absent.
	enrollments map[string]*nudge.Enrollment
	sms         *smsRules
}

// job is a message ready for its provider.
type job struct {
	m       *nudge.Message
	c       *nudge.Contact
	o       *nudge.Outbound
	attempt int
	sender  nudge.Sender
	// segments: an SMS's, recorded with its sending mark (SMS budgets
	// count them).
	segments int
}

// markLoop moves ready messages to sending and hands them to the
// senders. A message is marked only for a sender that is free to call its
// provider at once (a token of idle each): a crash leaves at most as many
// messages with an unknown outcome as there are senders.
//
// It commits the marks of a group, with the outcomes recorded since its
// last commit, in one transaction. A group waits until it has a quarter of
// the senders, or, once every message of the pass is ready, all that are
// left when fewer remain: a commit costs about as much as the rows it
// writes, so groups of one or two, which is what a free sender at a time
// gives, cost several times more per message, while the other three
// quarters of the senders keep calling their providers.
func (w *Worker) markLoop(ctx context.Context, ready <-chan *job, marked chan<- *job, idle chan struct{}, b *batch, c int) {
	group := max(1, c/4)
	var (
		jobs []*job // ready, not yet marked
		free int    // idle tokens held here
		in   = ready
	)
	for in != nil || len(jobs) > 0 {
		// Take whatever is already there without waiting.
	drain:
		for {
			select {
			case j, ok := <-in:
				if !ok {
					in = nil
					continue
				}
				jobs = append(jobs, j)
				continue
			default:
			}
			if free < c {
				select {
				case <-idle:
					free++
					continue
				default:
				}
			}
			break drain
		}
		if in == nil && len(jobs) == 0 {
			return
		}
		n := min(len(jobs), free)
		if n == 0 || (n < group && (in != nil || n < len(jobs))) {
			// Wait for a job or a free sender, whichever is missing.
			var getJob <-chan *job
			if len(jobs) < c {
				getJob = in
			}
			select {
			case j, ok := <-getJob:
				if !ok {
					in = nil
					continue
				}
				jobs = append(jobs, j)
			case <-idle:
				free++
			}
			continue
		}
		g := jobs[:n]
		jobs = jobs[n:]
		free -= n
		free += w.mark(ctx, g, marked, b)
	}
}

// mark commits a group's sending marks, with the outcomes recorded so
// far, and hands the marked jobs to the senders. It returns how many of
// the group's tokens were not used.
func (w *Worker) mark(ctx context.Context, group []*job, marked chan<- *job, b *batch) (unused int) {
	outcomes := b.take()
	us := append(make([]*nudge.MessageUpdate, 0, len(outcomes)+len(group)), outcomes...)
	for _, g := range group {
		d := map[string]any{"attempt": g.attempt}
		if g.segments > 0 {
			d["segments"] = g.segments
		}
		us = append(us, &nudge.MessageUpdate{MessageID: g.m.ID, Status: nudge.MessageSending, Attempts: g.attempt, Detail: d})
	}
	oks, err := w.cfg.Store.MessageUpdate(ctx, us, w.cfg.Clock.Now())
	if err != nil {
		// Not marked: they stay queued and are claimed again when the
		// claim expires.
		w.log.ErrorContext(ctx, "delivery: mark sending", "messages", len(group), "error", err)
		b.putBack(outcomes)
		return len(group)
	}
	for i, g := range group {
		if !oks[len(outcomes)+i] {
			// Someone moved it on meanwhile (the engine cancelled it): not sent.
			w.log.DebugContext(ctx, "delivery: message no longer queued", "message_id", g.m.ID)
			unused++
			continue
		}
		marked <- g
	}
	return unused
}

// check applies to a claimed batch the checks that need no provider, in
// this order: a webhook message without a sender is parked; a message past
// its maximum age, without a contact or without a sender fails; the
// re-check (Config.Recheck, once for all the messages still there)
// cancels. It returns the messages that passed, in order.
func (w *Worker) check(ctx context.Context, msgs []*nudge.Message, p *pass, b *batch) ([]*nudge.Message, error) {
	now := w.cfg.Clock.Now()
	out := make([]*nudge.Message, 0, len(msgs))
	for _, m := range msgs {
		fail := func(reason, text string) { w.fail(ctx, b, m, reason, text) }
		sender := w.cfg.Senders[m.Channel]
		switch {
		case m.Channel == nudge.ChannelWebhook && sender == nil:
			// Parked, not failed: see the package doc.
			b.add(&nudge.MessageUpdate{MessageID: m.ID, AvailableAt: now.Add(WebhookPark),
				Detail: map[string]any{"reason": ReasonNotImplemented}})
			w.log.DebugContext(ctx, "delivery: webhook message parked: no webhook sender", "message_id", m.ID)
		case now.Sub(m.CreatedAt) > w.cfg.MaxAge:
			fail(ReasonMaxAge, fmt.Sprintf("queued for %s, more than the maximum age of %s", now.Sub(m.CreatedAt).Round(time.Second), w.cfg.MaxAge))
		case p.contacts[m.ContactID] == nil:
			fail(ReasonNoContact, "the contact no longer exists")
		case sender == nil:
			fail(ReasonNoSender, "no "+m.Channel+" sender is configured")
		default:
			out = append(out, m)
		}
	}
	if w.cfg.Recheck == nil || len(out) == 0 {
		return out, nil
	}
	reasons := w.cfg.Recheck(ctx, out, p.contacts, p.enrollments)
	if len(reasons) != len(out) {
		return nil, fmt.Errorf("delivery: the re-check answered for %d of %d messages", len(reasons), len(out))
	}
	keep := out[:0]
	for i, m := range out {
		if reasons[i] == "" {
			keep = append(keep, m)
			continue
		}
		b.add(&nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageCancelled,
			Detail: map[string]any{"reason": reasons[i], "at": "dispatch"}})
		w.log.DebugContext(ctx, "delivery: message cancelled at dispatch", "message_id", m.ID, "reason", reasons[i])
	}
	return keep, nil
}

// prepare takes a checked message as far as its provider call: it returns
// the job to send, or nil when the message ended (or was deferred) here.
func (w *Worker) prepare(ctx context.Context, m *nudge.Message, p *pass, b *batch) *job {
	c, sr := p.contacts[m.ContactID], p.sms
	now := w.cfg.Clock.Now()
	fail := func(reason, text string, extra ...any) { w.fail(ctx, b, m, reason, text, extra...) }
	sender := w.cfg.Senders[m.Channel]
	if w.limits != nil && m.Channel != nudge.ChannelWebhook {
		ok, at, late := w.limits.admit(ctx, m.ID, m.Channel, w.cfg.From[m.Channel], now, m.CreatedAt.Add(w.cfg.MaxAge))
		switch {
		case late:
			fail(ReasonRateLimit, fmt.Sprintf("the rate limits of its sender have no free slot before its maximum age of %s", w.cfg.MaxAge))
			return nil
		case !ok:
			// Deferred, not failed: it keeps its place (see RateLimits).
			b.add(&nudge.MessageUpdate{MessageID: m.ID, AvailableAt: at})
			return nil
		}
	}
	o, reason, err := w.outbound(ctx, m, c, p)
	if err != nil {
		fail(reason, err.Error())
		return nil
	}
	j := &job{m: m, c: c, o: o, attempt: m.Attempts + 1, sender: sender}
	if m.Channel == nudge.ChannelSMS {
		j.segments = template.Segments(o.Text).Segments
		if u := sr.spend(m, j.segments); u != nil {
			b.add(u)
			w.log.InfoContext(ctx, "delivery: SMS budget spent; text cancelled", "message_id", m.ID, "journey_id", m.JourneyID)
			return nil
		}
	}
	return j
}

// fail records a message failed for reason, with extra detail pairs.
func (w *Worker) fail(ctx context.Context, b *batch, m *nudge.Message, reason, text string, extra ...any) {
	d := map[string]any{"reason": reason}
	if text != "" {
		d["error"] = text
	}
	for i := 0; i+1 < len(extra); i += 2 {
		d[extra[i].(string)] = extra[i+1]
	}
	b.add(&nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageFailed, Error: cmp.Or(text, reason), Detail: d})
	w.log.WarnContext(ctx, "delivery: message failed", "message_id", m.ID, "channel", m.Channel, "reason", reason, "error", text)
}

// send calls the provider for a message marked sending and records the
// outcome.
func (w *Worker) send(ctx context.Context, j *job, b *batch) {
	m, c, o, attempt := j.m, j.c, j.o, j.attempt
	fail := func(reason, text string, extra ...any) { w.fail(ctx, b, m, reason, text, extra...) }
	res, err := j.sender.Send(ctx, j.o)
	now := w.cfg.Clock.Now()
	var se *nudge.SendError
	switch {
	case err == nil:
		b.providerCall(m.Channel, w.providers[m.Channel], now, "")
	case errors.As(err, &se):
		b.providerCall(m.Channel, w.providers[m.Channel], now, se.Code+": "+se.Message)
	default:
		b.providerCall(m.Channel, w.providers[m.Channel], now, "no answer: "+err.Error())
	}
	switch {
	case err == nil:
		status := nudge.MessageSent
		if res.Status == nudge.MessageDelivered {
			status = nudge.MessageDelivered
		}
		d := map[string]any{"provider_id": res.ProviderID}
		if res.Segments > 0 {
			d["segments"] = res.Segments
		}
		if status == nudge.MessageDelivered {
			// The history stays complete: sent, then delivered.
			b.add(&nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageSent, ProviderID: res.ProviderID, Attempts: attempt, Detail: d})
		}
		b.add(&nudge.MessageUpdate{MessageID: m.ID, Status: status, ProviderID: res.ProviderID, Attempts: attempt, Detail: d})
		w.log.DebugContext(ctx, "delivery: message sent", "message_id", m.ID, "channel", m.Channel, "provider_id", res.ProviderID)
	case errors.As(err, &se) && se.Permanent:
		text := se.Code + ": " + se.Message
		fail(ReasonProvider, text, "code", se.Code, "attempt", attempt)
		if se.OptedOut {
			w.optedOut(m, c, o.To, se, b)
		}
	case errors.As(err, &se):
		text := se.Code + ": " + se.Message
		delay := max(w.backoff(attempt, m.ID), se.RetryAfter)
		at := now.Add(delay)
		if at.Sub(m.CreatedAt) > w.cfg.MaxAge {
			fail(ReasonMaxAge, text, "code", se.Code, "attempt", attempt)
			return
		}
		b.add(&nudge.MessageUpdate{MessageID: m.ID, Status: nudge.MessageQueued, Requeue: true, AvailableAt: at,
			Attempts: attempt, Error: text,
			Detail: map[string]any{"reason": ReasonRetry, "code": se.Code, "error": text, "attempt": attempt, "retry_at": at}})
		w.log.WarnContext(ctx, "delivery: temporary failure, will retry", "message_id", m.ID, "channel", m.Channel,
			"code", se.Code, "retry_at", at)
	default:
		u := w.unknown(m, now, ReasonUnknown, err.Error())
		u.Attempts = attempt
		b.add(u)
		w.log.WarnContext(ctx, "delivery: message outcome unknown", "message_id", m.ID, "channel", m.Channel,
			"requeued", u.Requeue, "error", err)
	}
}

// optedOut records what a provider's opt-out means beyond this message:
// the address opted out (for every purpose: the carrier blocks them all)
// and is suppressed.
func (w *Worker) optedOut(m *nudge.Message, c *nudge.Contact, to string, se *nudge.SendError, b *batch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range nudge.Purposes {
		b.consent = append(b.consent, &nudge.ConsentRecordParams{
			ContactID: c.ID, Channel: m.Channel, Purpose: p, Status: nudge.ConsentOptedOut,
			Source: nudge.SourceProvider, Evidence: nudge.ConsentEvidence{Text: "provider error " + se.Code + ": " + se.Message},
		})
	}
	if m.Channel == nudge.ChannelSMS {
		b.suppr = append(b.suppr, &nudge.SuppressionAddParams{
			Channel: m.Channel, Address: to, Reason: nudge.SuppressProviderOptOut, Source: nudge.SourceProvider,
			Note: "provider error " + se.Code + " on message " + m.ID,
		})
	}
}

// outbound renders m for its provider. An error comes with the reason to
// fail the message with.
func (w *Worker) outbound(ctx context.Context, m *nudge.Message, c *nudge.Contact, p *pass) (*nudge.Outbound, string, error) {
	o := &nudge.Outbound{
		MessageID:      m.ID,
		IdempotencyKey: m.IdempotencyKey,
		Channel:        m.Channel,
		From:           w.cfg.From[m.Channel],
		StatusCallback: w.cfg.StatusCallback[m.Channel],
	}
	if m.Channel == nudge.ChannelWebhook {
		url, _ := m.Details["url"].(string)
		if url == "" {
			return nil, ReasonNoAddress, errors.New("the webhook message has no url")
		}
		body, err := json.Marshal(m)
		if err != nil {
			return nil, ReasonTemplateError, err
		}
		o.To, o.Text = url, string(body)
		return o, "", nil
	}
	o.To = nudge.ContactAddress(c, m.Channel)
	if o.To == "" {
		return nil, ReasonNoAddress, fmt.Errorf("the contact has no %s address", m.Channel)
	}
	var ev *nudge.Event
	if en := p.enrollments[m.EnrollmentID]; en != nil {
		ev = en.Event
	}
	data := template.Data{Contact: c, Message: m, Event: ev,
		Journey: template.Journey{ID: m.JourneyID, Name: w.journeyName(ctx, m.JourneyID), Version: m.Version}}
	if m.Template == "" {
		return nil, ReasonTemplateError, errors.New("the message names no template")
	}
	r, err := w.cfg.Templates.RenderChannel(m.Channel, m.Template, data)
	if err != nil {
		return nil, ReasonTemplateError, err
	}
	o.Subject, o.HTML, o.Text = r.Subject, r.HTML, r.Text
	if m.Channel == nudge.ChannelSMS {
		o.Text = p.sms.withNotice(m, o.Text)
		limits := w.cfg.SMSLimits
		limits.OptOutNotice = "" // added above where it is due
		if err := template.LintSMS(o.Text, limits).Err(); err != nil {
			return nil, ReasonSMSLint, err
		}
	}
	if w.cfg.Prepare != nil {
		if err := w.cfg.Prepare(ctx, m, c, o); err != nil {
			return nil, ReasonTemplateError, err
		}
	}
	return o, "", nil
}

// journeyName returns a journey's name for templates, read once per
// journey ("" when it cannot be read: a name is not worth failing a send).
func (w *Worker) journeyName(ctx context.Context, id string) string {
	w.mu.Lock()
	name, ok := w.journeys[id]
	w.mu.Unlock()
	if ok {
		return name
	}
	j, err := w.cfg.Store.JourneyGet(ctx, id)
	if err != nil {
		return ""
	}
	w.mu.Lock()
	w.journeys[id] = j.Name
	w.mu.Unlock()
	return j.Name
}
