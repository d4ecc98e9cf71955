package engine_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
)

// clickJourney waits for a click after its email; the click ends it.
const clickJourney = `id: click
trigger: {event: go}
steps:
  - id: email
    email: {template: hello}
  - id: clicked
    wait_for: {event: email.clicked, timeout: 2d, on_event: done, on_timeout: done}
  - id: done
    exit: {}
`

// A batch holding several items of one contact evaluates them in order on
// the state the previous left, even when two of them move one enrollment
// (which then takes two commits).
func TestInboxBatchOfOneContact(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish(clickJourney)
		for _, id := range []string{"fast", "slow"} {
			e.contact(&nudge.ContactPatch{ID: id, Email: str(id + "@example.com")})
		}
		e.track("fast", "go", nil)
		e.track("slow", "go", nil)
		e.track("fast", "email.clicked", nil)
		e.track("fast", "go", nil)
		if n := e.run(); n != 6 { // 2 contact changes and 4 events
			t.Errorf("RunOnce = %d, want 6", n)
		}
		e.wantReasons("fast", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent,
			engine.ReasonEventArrived, engine.ReasonExitStep, engine.ReasonReentryNever)
		e.wantReasons("slow", engine.ReasonEnteredEvent, engine.ReasonQueued, engine.ReasonWaitEvent)
		if ms := e.messages("fast"); len(ms) != 1 {
			t.Errorf("fast: %d messages, want 1", len(ms))
		}
	})
}

// consumingStore hands out claimed inbox items of which the first was
// already consumed by "another process" (as when a lease expired).
type consumingStore struct {
	engine.Store
	once sync.Once
}

func (s *consumingStore) InboxClaim(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]*nudge.InboxItem, error) {
	items, err := s.Store.InboxClaim(ctx, now, limit, lease)
	if err != nil || len(items) == 0 {
		return items, err
	}
	s.once.Do(func() {
		err = s.Store.EngineCommit(ctx, &nudge.EngineCommit{InboxDone: []int64{items[0].Seq}}, now)
	})
	return items, err
}

// levels records the levels of log records.
type levels struct {
	mu  sync.Mutex
	max slog.Level
	n   int
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 || r.Level > l.max {
		l.max = r.Level
	}
	l.n++
	return nil
}

// An item another process consumed is dropped quietly; the rest of its
// batch is processed.
func TestInboxItemConsumedElsewhere(t *testing.T) {
	stores(t, func(t *testing.T, s engine.Store) {
		e := newEnv(t, s)
		e.publish(clickJourney)
		e.track("gone", "go", nil)
		e.track("kept", "go", nil)
		var log levels
		eng, err := engine.New(engine.Config{Store: &consumingStore{Store: s}, Clock: e.clock, NewID: e.ids, Logger: slog.New(&log)})
		if err != nil {
			t.Fatal(err)
		}
		n, err := eng.RunOnce(ctx)
		if err != nil || n != 1 {
			t.Errorf("RunOnce = %d, %v; want 1, nil", n, err)
		}
		if log.n == 0 || log.max > slog.LevelDebug {
			t.Errorf("%d log records, the highest at %v; want debug only", log.n, log.max)
		}
		e.wantReasons("gone")
		e.wantReasons("kept", engine.ReasonEnteredEvent, engine.ReasonNoAddress, engine.ReasonWaitEvent)
	})
}
