package kannel_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/channel/kannel"
	"github.com/nudge/nudge/nudgetest"
)

// Where Debian's kannel and kannel-extras packages put the programs.
const (
	bearerboxPath = "/usr/sbin/bearerbox"
	smsboxPath    = "/usr/sbin/smsbox"
	fakesmscPath  = "/usr/lib/kannel/test/fakesmsc"
)

// TestKannel runs a real Kannel: bearerbox and smsbox with two fake SMSCs,
// each driven by a fakesmsc process standing in for the operator. A message
// goes through the Sender to smsbox and comes out at the first fakesmsc; its
// delivery reports come back to Nudge's API; an inbound STOP from the second
// fakesmsc ends up as an opt-out in the consent ledger, and its confirmation
// goes back to that fakesmsc.
func TestKannel(t *testing.T) {
	for _, p := range []string{bearerboxPath, smsboxPath, fakesmscPath} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("Kannel is not installed (%s is missing); .ci/run installs it with apt-get install kannel kannel-extras", p)
		}
	}
	if testing.Short() {
		t.Skip("starts Kannel: skipped with -short")
	}
	ctx := context.Background()
	const key = "kannel-integration-key-0123456789"

	// Nudge's API, with a recorder in front to see what Kannel calls.
	store := nudgetest.SQLite(t)
	if _, _, err := store.ContactPut(ctx, &nudge.Contact{ID: "jane", Phone: "+13125550100"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: store, KannelKey: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan url.Values, 16)
	nudgeSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, r)
		q := r.URL.Query()
		q.Set("_path", r.URL.Path)
		q.Set("_status", fmt.Sprint(rec.Code))
		select {
		case calls <- q:
		default:
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(nudgeSrv.Close)

	dir := t.TempDir()
	ports := freePorts(t, 5)
	admin, boxc, mt, mo, sendsms := ports[0], ports[1], ports[2], ports[3], ports[4]
	conf := fmt.Sprintf(`group = core
admin-port = %[1]d
admin-password = admin-secret
smsbox-port = %[2]d
box-allow-ip = 127.0.0.1
dlr-storage = internal
log-file = "%[6]s/bearerbox.log"
log-level = 1

group = smsc
smsc = fake
smsc-id = mt
denied-smsc-id = mo
port = %[3]d
connect-allow-ip = 127.0.0.1

group = smsc
smsc = fake
smsc-id = mo
allowed-smsc-id = mo
port = %[4]d
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %[2]d
sendsms-port = %[5]d
log-file = "%[6]s/smsbox.log"
log-level = 1

group = sendsms-user
username = nudge
password = sendsms-secret
max-messages = 10
concatenation = true

group = sms-service
keyword = default
get-url = "%[7]s/v1/webhooks/kannel/inbound?key=%[8]s&from=%%p&to=%%P&text=%%a&id=%%I"
max-messages = 1
omit-empty = true
accept-x-kannel-headers = true
`, admin, boxc, mt, mo, sendsms, dir, nudgeSrv.URL, key)
	confPath := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, f := range []string{"bearerbox.log", "smsbox.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				t.Logf("%s (end):\n%s", f, tail(b, 3000))
			}
		}
	})

	start(t, bearerboxPath, confPath)
	waitPort(t, boxc)
	start(t, smsboxPath, confPath)
	// smsbox may take a sendsms request before it has connected to
	// bearerbox, and then panics: wait until bearerbox lists it and its
	// sendsms port listens.
	waitFor(t, "smsbox to connect to bearerbox", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status.txt?password=admin-secret", admin))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "smsbox") && !strings.Contains(string(b), "No boxes connected")
	})
	waitPort(t, sendsms)
	operator := start(t, fakesmscPath, "-H", "127.0.0.1", "-r", fmt.Sprint(mt), "-i", "0.1", "-m", "0", "0 0 text unused")

	// Send, retrying while smsbox is still connecting to bearerbox.
	s, err := kannel.New(kannel.Config{
		SendSMSURL: fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms", sendsms),
		Username:   "nudge", Password: "sendsms-secret", From: "+18005550199",
		DLRURL: nudgeSrv.URL + "/v1/webhooks/kannel/dlr?key=" + key,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &nudge.Outbound{MessageID: "m-kannel-1", Channel: nudge.ChannelSMS, To: "+13125550100",
		Text: "Your webinar starts in 1 hour"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := s.Send(ctx, m)
		if err == nil {
			if res.ProviderID != m.MessageID {
				t.Errorf("provider id = %q", res.ProviderID)
			}
			break
		}
		var se *nudge.SendError
		if !errors.As(err, &se) || se.Permanent || time.Now().After(deadline) {
			t.Fatalf("send: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The operator receives it.
	waitFor(t, "fakesmsc to print the message", func() bool {
		return strings.Contains(operator.String(), "+18005550199 +13125550100 text Your webinar starts in 1 hour")
	})

	// Delivery reports come back: 8 (the SMSC took it) and, from the fake
	// SMSC, 1 (delivered), each for our message and accepted by the API.
	types := map[string]bool{}
	for !types["1"] || !types["8"] {
		q := next(t, calls, "a delivery report")
		if q.Get("_path") != "/v1/webhooks/kannel/dlr" || q.Get("message_id") != m.MessageID || q.Get("_status") != "200" {
			t.Fatalf("unexpected call: %v", q)
		}
		types[q.Get("type")] = true
	}

	// An inbound STOP from the operator becomes an opt-out.
	sender := start(t, fakesmscPath, "-H", "127.0.0.1", "-r", fmt.Sprint(mo), "-i", "0.1", "-m", "1",
		"+13125550100 +18005550199 text STOP")
	for {
		q := next(t, calls, "the inbound STOP")
		if q.Get("_path") != "/v1/webhooks/kannel/inbound" {
			continue // a late report
		}
		if q.Get("from") != "+13125550100" || q.Get("text") != "STOP" || q.Get("id") == "" || q.Get("_status") != "200" {
			t.Fatalf("inbound call: %v", q)
		}
		break
	}
	states, err := store.ConsentList(ctx, "jane")
	if err != nil {
		t.Fatal(err)
	}
	var optedOut bool
	for _, st := range states {
		if st.Channel == nudge.ChannelSMS && st.Purpose == nudge.PurposeMarketing && st.Status == nudge.ConsentOptedOut && st.Source == nudge.SourceKeyword {
			optedOut = true
		}
	}
	if !optedOut {
		t.Errorf("consent after STOP: %+v", states)
	}
	// The confirmation goes back to the sender through Kannel.
	waitFor(t, "the STOP confirmation to reach fakesmsc", func() bool {
		return strings.Contains(sender.String(), "Got message 1: <+18005550199 +13125550100 text ")
	})
}

// process is a started program and its combined output.
type process struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs a program until the test ends: then SIGTERM, and SIGKILL if
// it has not stopped 5 s later (Kannel's boxes take a moment to shut down).
func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	p := &process{}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = p, p
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output (end):\n%s", filepath.Base(name), tail([]byte(p.String()), 2000))
		}
	})
	return p
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("port %d to listen", port), func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func next(t *testing.T, calls <-chan url.Values, what string) url.Values {
	t.Helper()
	select {
	case q := <-calls:
		return q
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
