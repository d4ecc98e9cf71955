package engine_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/engine"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/sqlite"
)

// benchStores are the stores the benchmarks run on; PostgreSQL skips
// without NUDGE_TEST_POSTGRES.
var benchStores = []struct {
	name string
	open func(testing.TB) engine.Store
}{
	{"sqlite", func(t testing.TB) engine.Store { return nudgetest.SQLite(t) }},
	{"postgres", func(t testing.TB) engine.Store { return nudgetest.Postgres(t) }},
}

// drainSizes reads NUDGE_BENCH_DRAIN, a comma-separated list of
// WAITING/DUE pairs ("1000000/100000"); the default is small enough for a
// plain go test -bench.
func drainSizes(b *testing.B) [][2]int {
	spec := cmp.Or(os.Getenv("NUDGE_BENCH_DRAIN"), "20000/5000")
	var out [][2]int
	for _, f := range strings.Split(spec, ",") {
		w, d, ok := strings.Cut(strings.TrimSpace(f), "/")
		nw, err1 := strconv.Atoi(w)
		nd, err2 := strconv.Atoi(d)
		if !ok || err1 != nil || err2 != nil || nd > nw || nd <= 0 {
			b.Fatalf("NUDGE_BENCH_DRAIN: %q is not WAITING/DUE", f)
		}
		out = append(out, [2]int{nw, nd})
	}
	return out
}

// BenchmarkDrain measures transitions per second while DUE of WAITING
// enrollments fall due at once (NUDGE_BENCH_DRAIN, default 20000/5000; the
// issue's figure is 1000000/100000), and the heap in use after draining,
// which must not grow with WAITING: the engine holds one claim batch at a
// time. NUDGE_BENCH_BATCH sets the engine's claim batch (default 500).
// Each iteration seeds DUE new due enrollments (untimed), so every
// drain starts with WAITING waiting.
func BenchmarkDrain(b *testing.B) {
	for _, size := range drainSizes(b) {
		waiting, due := size[0], size[1]
		for _, st := range benchStores {
			b.Run(fmt.Sprintf("%s/waiting=%d/due=%d", st.name, waiting, due), func(b *testing.B) {
				e := newEnv(b, st.open(b))
				if n, _ := strconv.Atoi(os.Getenv("NUDGE_BENCH_BATCH")); n > 0 {
					eng, err := engine.New(engine.Config{Store: e.s, Clock: e.clock, NewID: e.ids, Batch: n})
					if err != nil {
						b.Fatal(err)
					}
					e.eng = eng
				}
				e.publish(waitingJourney)
				seedContacts(b, e.s, waiting, e.clock.Now())
				// The ones not due wake in 30 days.
				seedEnrollments(b, e, due, waiting, e.clock.Now().Add(30*24*time.Hour))
				var drained int
				var elapsed, cpu time.Duration
				var peak uint64
				for b.Loop() {
					b.StopTimer()
					// The first DUE contacts' enrollments completed in
					// the previous drain: they enter again.
					seedEnrollments(b, e, 0, due, e.clock.Now().Add(time.Hour))
					analyze(b, e.s)
					e.clock.Advance(2 * time.Hour)
					runtime.GC()
					b.StartTimer()
					start, cpu0 := time.Now(), cpuTime()
					var (
						n int
						p uint64
					)
					// Labelled, so that a profile of the run shows the
					// drains apart from the seeding: go tool pprof
					// -tagfocus phase=drain.
					pprof.Do(ctx, pprof.Labels("phase", "drain"), func(context.Context) { n, p = drain(b, e.eng) })
					elapsed += time.Since(start)
					cpu += cpuTime() - cpu0
					drained += n
					peak = max(peak, p)
					if n != due {
						b.Fatalf("drained %d, want %d", n, due)
					}
				}
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(drained)/elapsed.Seconds(), "transitions/s")
				b.ReportMetric(float64(cpu.Microseconds())/float64(drained), "cpu-µs/transition")
				b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			})
		}
	}
}

// analyze does for a store on PostgreSQL what autovacuum does after a bulk
// load: the test server runs without it, and with neither statistics nor
// VACUUM the drain at 1,000,000 waiting read every waiting row to claim
// 500 and every dead row of the inbox the seed emptied between batches.
func analyze(b *testing.B, s engine.Store) {
	if a, ok := s.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is the CPU time (user and system) this process used so far: on a
// machine shared with other work, CPU per transition is steadier than the
// rate. It leaves out the database server's (PostgreSQL).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// drain runs ProcessDue until nothing is due; it returns the transitions
// and the largest heap (live and garbage objects) seen between batches.
func drain(b *testing.B, eng *engine.Engine) (int, uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	got := 0
	for {
		k, err := eng.ProcessDue(ctx)
		if err != nil {
			b.Fatal(err)
		}
		metrics.Read(sample)
		peak = max(peak, sample[0].Value.Uint64())
		if k == 0 {
			return got, peak
		}
		got += k
	}
}

// seedContacts creates contacts c0000000… with an email address, in large
// batches, and empties the inbox their creation filled.
func seedContacts(b testing.TB, s engine.Store, n int, now time.Time) {
	b.Helper()
	const chunk = 10000
	for i := 0; i < n; i += chunk {
		ps := make([]*nudge.ContactPatch, 0, chunk)
		for k := i; k < min(n, i+chunk); k++ {
			ps = append(ps, &nudge.ContactPatch{ID: fmt.Sprintf("c%07d", k), Email: str("x@example.com")})
		}
		if _, err := s.ContactMerge(ctx, ps, now); err != nil {
			b.Fatal(err)
		}
	}
	for {
		items, err := s.InboxClaim(ctx, now, chunk, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if len(items) == 0 {
			return
		}
		done := make([]int64, len(items))
		for i, it := range items {
			done[i] = it.Seq
		}
		if err := s.EngineCommit(ctx, &nudge.EngineCommit{InboxDone: done}, now); err != nil {
			b.Fatal(err)
		}
	}
}

// seedEnrollments commits enrollments of contacts from..to-1, waiting at
// waitingJourney's first step until wake, in large batches.
func seedEnrollments(b testing.TB, e *env, from, to int, wake time.Time) {
	b.Helper()
	const chunk = 10000
	now := e.clock.Now()
	for i := from; i < to; i += chunk {
		c := &nudge.EngineCommit{}
		for k := i; k < min(to, i+chunk); k++ {
			c.Enrollments = append(c.Enrollments, &nudge.Enrollment{
				ID: e.ids(), JourneyID: "drain", Version: 1, ContactID: fmt.Sprintf("c%07d", k),
				State: nudge.EnrollmentWaiting, StepID: "pause", WakeAt: wake,
				Steps:     map[string]nudge.StepRecord{"pause": {At: now}},
				EnteredAt: now, UpdatedAt: now,
			})
		}
		if err := e.s.EngineCommit(ctx, c, now); err != nil {
			b.Fatal(err)
		}
	}
}

// The engine reads contacts in batches through this method when the store
// has it (engine.contactBatchGetter); keep the signatures in step.
var _ interface {
	ContactGetMany(context.Context, []string) (map[string]*nudge.Contact, error)
} = (*sqlite.DB)(nil)

// commitTimes wraps a store to note when each entry decision commits, by
// the message id of the event that made it.
type commitTimes struct {
	engine.Store
	mu sync.Mutex
	at map[string]time.Time
}

func (s *commitTimes) EngineCommit(ctx context.Context, c *nudge.EngineCommit, now time.Time) error {
	err := s.Store.EngineCommit(ctx, c, now)
	if err != nil {
		return err
	}
	t := time.Now()
	s.mu.Lock()
	for _, d := range c.Decisions {
		if id, ok := d.Details["event_message_id"].(string); ok && d.Outcome == nudge.OutcomeEntered {
			s.at[id] = t
		}
	}
	s.mu.Unlock()
	return nil
}

// ContactGetMany keeps the store's batch read visible through the wrapper.
func (s *commitTimes) ContactGetMany(ctx context.Context, ids []string) (map[string]*nudge.Contact, error) {
	if m, ok := s.Store.(interface {
		ContactGetMany(context.Context, []string) (map[string]*nudge.Contact, error)
	}); ok {
		return m.ContactGetMany(ctx, ids)
	}
	out := map[string]*nudge.Contact{}
	for _, id := range ids {
		c, err := s.Store.ContactGet(ctx, id)
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = c
	}
	return out, nil
}

// latencyJourney enters on "go", sends an email and waits.
const latencyJourney = "id: latency\ntrigger: {event: go}\nsteps:\n  - id: hello\n    email: {template: hello}\n  - id: pause\n    wait: {for: 1d}\n"

// BenchmarkEventLatency measures event-to-decision latency at a steady
// 1,000 events/s on the wall clock: each op is one track event (a new
// contact entering latencyJourney) ingested on its schedule, with an engine
// loop running RunOnce whenever Notify wakes it, as the server does. The
// latency runs from EventIngest's return to the return of the EngineCommit
// that holds the entry decision. Use -benchtime 10000x for 10 s of load.
func BenchmarkEventLatency(b *testing.B) {
	const rate = 1000 // events per second
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			s := &commitTimes{Store: st.open(b), at: map[string]time.Time{}}
			pub := newEnv(b, s.Store)
			pub.publish(latencyJourney)
			eng, err := engine.New(engine.Config{Store: s})
			if err != nil {
				b.Fatal(err)
			}
			lctx, cancel := context.WithCancel(ctx)
			loop := make(chan error, 1)
			go func() {
				for {
					select {
					case <-lctx.Done():
						loop <- nil
						return
					case <-eng.Wake():
					}
					if _, err := eng.RunOnce(lctx); err != nil && lctx.Err() == nil {
						loop <- err
						return
					}
				}
			}()
			defer cancel()

			n := b.N
			ingested := make(map[string]time.Time, n)
			run := fmt.Sprint(time.Now().UnixNano())
			b.ResetTimer()
			start := time.Now()
			for sent := 0; sent < n; {
				// Ingest what is due by now: the rate holds whatever the
				// timer's jitter.
				want := min(n, int(time.Since(start).Seconds()*rate)+1)
				if want <= sent {
					time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / rate)))
					continue
				}
				items := make([]nudge.IngestItem, 0, want-sent)
				ids := make([]string, 0, want-sent)
				now := time.Now().UTC()
				for k := sent; k < want; k++ {
					cid := fmt.Sprintf("l%s-%07d", run, k)
					id := "go-" + cid
					ids = append(ids, id)
					items = append(items, nudge.IngestItem{
						Event: &nudge.Event{MessageID: id, Type: nudge.EventTrack, ContactID: cid, Name: "go", Timestamp: now, ReceivedAt: now},
						Patch: &nudge.ContactPatch{ID: cid, Email: str("x@example.com")},
					})
				}
				if _, err := s.EventIngest(ctx, items, now); err != nil {
					b.Fatal(err)
				}
				t := time.Now()
				for _, id := range ids {
					ingested[id] = t
				}
				eng.Notify()
				sent = want
			}
			feed := time.Since(start)
			deadline := time.Now().Add(time.Minute)
			for {
				s.mu.Lock()
				done := len(s.at)
				s.mu.Unlock()
				if done >= n {
					break
				}
				select {
				case err := <-loop:
					b.Fatalf("engine loop: %v", err)
				default:
				}
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d events decided after a minute", done, n)
				}
				eng.Notify()
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			if err := <-loop; err != nil {
				b.Fatalf("engine loop: %v", err)
			}
			lat := make([]time.Duration, 0, n)
			s.mu.Lock()
			for id, t := range ingested {
				lat = append(lat, max(0, s.at[id].Sub(t)))
			}
			s.mu.Unlock()
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(n)/feed.Seconds(), "events/s")
		})
	}
}
