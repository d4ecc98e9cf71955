package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

func runBench(ctx context.Context, what string, args []string, stdout, stderr io.Writer) error {
	switch what {
	case "ingest":
		return benchIngest(ctx, args, stdout, stderr)
	case "import":
		return benchImport(ctx, args, stdout, stderr)
	case "crash":
		return benchCrash(ctx, args, stdout, stderr)
	case "nodes":
		return benchNodes(ctx, args, stdout, stderr)
	case "soak":
		return benchSoak(ctx, args, stdout, stderr)
	}
	fmt.Fprintln(stderr, "usage: nudge bench ingest|import|crash|nodes|soak [flags]")
	return errUsage
}

// benchIngest measures /v1/batch over loopback HTTP against the raw batched
// insert rate of the same store with the same rows, and prints the ratio.
func benchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "database to measure: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir)")
	events := fs.Int("events", 200_000, "events per phase")
	batch := fs.Int("batch", 100, "events per /v1/batch request")
	clients := fs.Int("clients", 8, "concurrent clients")
	users := fs.Int("contacts", 10_000, "distinct contacts the events belong to")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *db == "" {
		dir, err := os.MkdirTemp("", "nudge-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*db = filepath.Join(dir, "bench.db")
	}
	nbatches := max(*events / *batch, 1)
	run := strconv.FormatInt(time.Now().UnixNano(), 36)

	cfg := DefaultConfig()
	cfg.DB, cfg.Addr = *db, "127.0.0.1:0"
	m := &Main{Config: cfg}
	if err := m.Run(ctx); err != nil {
		return err
	}
	defer m.Close()
	key, token := nudge.NewAPIKey(nudge.RoleIngest, "bench", time.Now())
	if err := m.Store.APIKeyCreate(ctx, key); err != nil {
		return err
	}
	kind := "SQLite"
	if isPostgres(*db) {
		kind = "PostgreSQL"
	}
	fmt.Fprintf(stdout, "nudge bench ingest: %s, %d events per phase in batches of %d, %d clients, %d contacts\n",
		kind, nbatches**batch, *batch, *clients, *users)

	// Raw: the store's own batched insert, same rows, same concurrency.
	parser := &ingest.Parser{Contacts: &ingest.ContactNormalizer{DefaultRegion: "US"}}
	rawBatches := make([][]nudge.IngestItem, nbatches)
	for i := range rawBatches {
		items, err := parser.ParseBatch(benchBody("raw-"+run, i, *batch, *users), time.Now())
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Err != nil {
				return it.Err
			}
			rawBatches[i] = append(rawBatches[i], it.Item)
		}
	}
	raw := parallel(*clients, nbatches, func(i int) (int, error) {
		res, err := m.Store.EventIngest(ctx, rawBatches[i], time.Now())
		if err != nil {
			return 0, err
		}
		return len(res.Duplicate) - count(res.Duplicate), nil
	})
	rawBatches = nil
	if raw.err != nil {
		return fmt.Errorf("raw insert: %w", raw.err)
	}
	resetPeakRSS()

	// HTTP: the same rows as Segment batches over loopback.
	bodies := make([][]byte, nbatches)
	payload := 0
	for i := range bodies {
		bodies[i] = benchBody("http-"+run, i, *batch, *users)
		payload += len(bodies[i])
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}}
	url := "http://" + m.Addr() + "/v1/batch"
	httpRes := parallel(*clients, nbatches, func(i int) (int, error) {
		req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(bodies[i]))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct {
			Stored int `json:"stored"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("batch %d: status %d (%v)", i, resp.StatusCode, err)
		}
		return out.Stored, nil
	})
	if httpRes.err != nil {
		return fmt.Errorf("http ingest: %w", httpRes.err)
	}
	rss := peakRSS()

	fmt.Fprintf(stdout, "  raw store insert  %9.0f events/s  (%d stored, p50 %s, p99 %s per batch)\n", raw.rate(), raw.n, raw.pct(50), raw.pct(99))
	fmt.Fprintf(stdout, "  HTTP /v1/batch    %9.0f events/s  (%d stored, p50 %s, p99 %s per request)\n", httpRes.rate(), httpRes.n, httpRes.pct(50), httpRes.pct(99))
	fmt.Fprintf(stdout, "  ratio             %9.0f%%  of the raw store rate (target ≥ 50%%)\n", 100*httpRes.rate()/raw.rate())
	fmt.Fprintf(stdout, "  peak RSS          %9s  (during the HTTP phase: server, clients and their %.0f MB of payloads)\n", rss, float64(payload)/1e6)
	return nil
}

// benchBody is one Segment batch of n track events with typical properties.
func benchBody(run string, b, n, users int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"batch":[`)
	for j := range n {
		i := b*n + j
		if j > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"type":"track","userId":"user-%d","event":"page.viewed","messageId":"%s-%d",`+
			`"timestamp":"2026-11-29T10:%02d:%02d.%03dZ","properties":{"path":"/pricing","plan":"pro","price":%d.5,"quantity":%d,"referrer":"https://example.com/blog/%d"},`+
			`"context":{"ip":"203.0.113.%d","userAgent":"Mozilla/5.0 (bench)","library":{"name":"analytics-node","version":"6.2.0"}}}`,
			i%users, run, i, i/60%60, i%60, i%1000, i%500, 1+i%5, i%97, i%255)
	}
	buf.WriteString(`],"sentAt":"2026-11-29T11:00:00.000Z"}`)
	return buf.Bytes()
}

type benchResult struct {
	n    int
	took time.Duration
	lat  []time.Duration
	err  error
}

func (r benchResult) rate() float64 { return float64(r.n) / r.took.Seconds() }

func (r benchResult) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)*p/100, len(r.lat)-1)].Round(10 * time.Microsecond)
}

// parallel runs do(0..n-1) on k workers, timing each call and the whole.
func parallel(k, n int, do func(i int) (int, error)) benchResult {
	var (
		next   atomic.Int64
		stored atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, n)
		first  error
		wg     sync.WaitGroup
	)
	start := time.Now()
	for range k {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t := time.Now()
				got, err := do(i)
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
				stored.Add(int64(got))
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	return benchResult{n: int(stored.Load()), took: took, lat: lat, err: first}
}

func count(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// resetPeakRSS returns freed memory to the OS and resets the kernel's peak
// RSS mark (Linux clear_refs), so peakRSS measures what follows.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS reads the process's peak resident set size (Linux VmHWM).
func peakRSS() string {
	kb := procStatusKB("self", "VmHWM")
	if kb == 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.0f MB", float64(kb)/1024)
}

// procStatusKB reads a kB field of /proc/PID/status (0 if it cannot).
func procStatusKB(pid, field string) int {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return kb
		}
	}
	return 0
}

// benchImport writes a CSV of n contacts to a temp file and imports it into a
// new store, printing the rate and the peak RSS.
func benchImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "database: a SQLite path or postgres:// URL (default: a new SQLite file in a temp dir)")
	rows := fs.Int("rows", 1_000_000, "contacts in the generated CSV")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the import to this file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	dir, err := os.MkdirTemp("", "nudge-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *db == "" {
		*db = filepath.Join(dir, "bench.db")
	}
	path := filepath.Join(dir, "contacts.csv")
	if err := writeBenchCSV(path, *rows); err != nil {
		return err
	}
	st, _ := os.Stat(path)
	s, err := openStore(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := ingest.NewCSVReader(f, nil, &ingest.ContactNormalizer{DefaultRegion: "US"})
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	sum, err := ingest.Import(ctx, s, r, ingest.ImportOptions{Now: nudge.SystemClock{}.Now})
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "nudge bench import: %d rows (%.0f MB CSV) in %s: %.0f rows/s; imported %d, updated %d, rejected %d; peak RSS %s\n",
		*rows, float64(st.Size())/1e6, took.Round(time.Millisecond), float64(*rows)/took.Seconds(),
		sum.Imported, sum.Updated, sum.Rejected, peakRSS())
	return nil
}

func writeBenchCSV(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id,email,phone,timezone,lifecycle_stage,is_customer,sms_consent,plan,owner")
	stages := []string{"lead", "marketingqualifiedlead", "opportunity", "customer"}
	plans := []string{"free", "pro", "team"}
	for i := range n {
		fmt.Fprintf(w, "c%d,person%d@example.com,+1415%07d,America/Los_Angeles,%s,%t,%s,%s,owner%d\n",
			i, i, 2000000+i%8000000, stages[i%4], i%4 == 3, []string{"opted_in", "opted_out", ""}[i%3], plans[i%3], i%50)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
