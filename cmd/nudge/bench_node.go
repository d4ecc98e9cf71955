package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// This file holds what the reliability harnesses (nudge bench crash,
// nudge bench nodes) run beside the server: `nudge serve` as a real child
// process they can SIGKILL, and the two provider sinks it sends to, a
// Twilio-format HTTP server and an SMTP server, which record every message
// they receive by the outbox message id it carries.

// serveCommand makes the command that runs `nudge serve` with args. The
// binary runs itself; a test replaces this with its own test binary (see
// TestMain in bench_crash_test.go).
var serveCommand = func(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the nudge binary to start: %w", err)
	}
	return exec.Command(exe, append([]string{"serve"}, args...)...), nil
}

// node is one `nudge serve` process, started and stopped (or killed) again
// and again on the same address, database and log file.
type node struct {
	name string
	addr string   // 127.0.0.1:port, the same on every start
	args []string // serve's flags beyond --addr
	env  []string // added to the harness's environment
	log  io.Writer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	killed bool          // the harness killed or stopped the current process
	starts int
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs the process and waits until it answers /readyz (its store
// answers), or fails with what it printed. A process the harness kills
// while it starts (a kill timed for the one before) is started again.
func (n *node) start(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := n.startOnce(ctx, deadline)
		if !errors.Is(err, errKilledStarting) {
			return err
		}
	}
}

var errKilledStarting = errors.New("killed while starting")

func (n *node) startOnce(ctx context.Context, deadline time.Time) error {
	cmd, err := serveCommand(append([]string{"--addr", n.addr}, n.args...)...)
	if err != nil {
		return err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, n.env...)
	cmd.Stdout, cmd.Stderr = n.log, n.log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", n.name, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited, n.killed = cmd, exited, false
	n.starts++
	n.mu.Unlock()
	go func() {
		cmd.Wait()
		close(exited)
	}()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get("http://" + n.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			if !n.exitedOnItsOwn() {
				return errKilledStarting
			}
			return fmt.Errorf("%s: exited while starting (%s); see its log", n.name, cmd.ProcessState)
		case <-ctx.Done():
			n.kill()
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.kill()
			return fmt.Errorf("%s: not ready by %s; see its log", n.name, deadline.Format(time.TimeOnly))
		}
	}
}

// kill sends SIGKILL to the running process and reports whether there was
// one to kill. It does not wait: <-n.done() does.
func (n *node) kill() bool { return n.signal(syscall.SIGKILL) }

// stop asks the process to finish (SIGTERM) and waits for it.
func (n *node) stop() {
	if n.signal(syscall.SIGTERM) {
		<-n.done()
	}
}

func (n *node) signal(sig os.Signal) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.killed {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
	}
	n.killed = true
	n.cmd.Process.Signal(sig)
	return true
}

// done is closed when the current process has exited.
func (n *node) done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exited
}

// exitedOnItsOwn reports whether the last process ended without the
// harness killing or stopping it: a crash of its own.
func (n *node) exitedOnItsOwn() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.killed
}

// received is what a sink knows of the messages it got, by outbox message
// id: how many times each arrived, and the step each one was for.
type received struct {
	mu     sync.Mutex
	count  map[string]int    // message id → deliveries
	byStep map[string]int    // recipient + step → deliveries
	onCall func(kind string) // called with the request in flight, before it is answered
	total  int
	// onReceive, when set, hears of each message as it arrives (the soak
	// measures event-to-message latency with it).
	onReceive func(to, step string, at time.Time)
}

func newReceived() *received {
	return &received{count: map[string]int{}, byStep: map[string]int{}}
}

func (r *received) add(id, to, step string) {
	r.mu.Lock()
	r.count[id]++
	r.byStep[to+" "+step]++
	r.total++
	r.mu.Unlock()
	if r.onReceive != nil {
		r.onReceive(to, step, time.Now())
	}
}

// duplicates counts deliveries beyond the first: of one outbox message, and
// of one step to one recipient (two messages for one step would be a
// transition processed twice).
func (r *received) duplicates() (byID, byStep int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.count {
		byID += n - 1
	}
	for _, n := range r.byStep {
		byStep += n - 1
	}
	return byID, byStep
}

func (r *received) times(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[id]
}

// ref is what the harness's templates put in every message: the outbox
// message id and the step, "ref:ID/STEP".
var refPattern = regexp.MustCompile(`ref:([0-9A-Za-z_-]+)/([0-9a-z_-]+)`)

// smsSink is a Twilio-format Messages endpoint that accepts everything.
type smsSink struct {
	*received
	srv *http.Server
	url string
}

func startSMSSink() (*smsSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &smsSink{received: newReceived(), url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", s.handle)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *smsSink) handle(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, `{"code":21602,"message":"bad form"}`, http.StatusBadRequest)
		return
	}
	m := refPattern.FindStringSubmatch(r.PostForm.Get("Body"))
	if m == nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"code":21602,"message":"the body carries no ref"}`)
		return
	}
	s.add(m[1], r.PostForm.Get("To"), m[2])
	if s.onCall != nil {
		s.onCall("sms")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":"SM%s","status":"queued","to":%q,"num_segments":"1","error_code":null}`, m[1], r.PostForm.Get("To"))
}

func (s *smsSink) close() { s.srv.Close() }

// mailSink is an SMTP server that accepts everything. The outbox message id
// is the Message-ID's local part; the body's ref names the step.
type mailSink struct {
	*received
	srv  *gosmtp.Server
	addr string
}

func startMailSink() (*mailSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &mailSink{received: newReceived(), addr: ln.Addr().String()}
	s.srv = gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &mailSession{sink: s}, nil
	}))
	s.srv.Domain = "sink.test"
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // a killed client resets its connections
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	go s.srv.Serve(ln)
	return s, nil
}

func (s *mailSink) close() { s.srv.Close() }

type mailSession struct {
	sink *mailSink
	to   string
}

func (ss *mailSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (ss *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	ss.to = to
	return nil
}
func (ss *mailSession) Reset()        { ss.to = "" }
func (ss *mailSession) Logout() error { return nil }

func (ss *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(msg.Body)
	if err != nil {
		return err
	}
	id, _, _ := strings.Cut(strings.Trim(msg.Header.Get("Message-Id"), "<> "), "@")
	m := refPattern.FindSubmatch(body)
	if id == "" || m == nil {
		return errors.New("the message carries no Message-ID or no ref")
	}
	ss.sink.add(id, ss.to, string(m[2]))
	if ss.sink.onCall != nil {
		ss.sink.onCall("email")
	}
	return nil
}
