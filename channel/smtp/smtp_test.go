package smtp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	gosasl "github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/smtp"
)

// Recipients the test server answers in a fixed way.
const (
	rcptTempFail = "tempfail@example.net" // 451 at RCPT
	rcptReject   = "nobody@example.net"   // 550 at RCPT
	rcptVanish   = "vanish@example.net"   // connection dropped after the data, before the reply
)

// received is one message as the server got it.
type received struct {
	From string
	To   []string
	Data []byte
}

// server is a real SMTP server (emersion/go-smtp) listening on loopback.
type server struct {
	addr string
	port int

	mu       sync.Mutex
	msgs     []received
	sessions []*gosmtp.Conn
	authed   []string
}

type serverOpts struct {
	tls      *tls.Config // offer STARTTLS
	password string      // require AUTH PLAIN with user "nudge" and this password
}

func startServer(t testing.TB, o serverOpts) *server {
	t.Helper()
	s := &server{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		s.mu.Lock()
		s.sessions = append(s.sessions, c)
		s.mu.Unlock()
		return &session{srv: s, conn: c, password: o.password}, nil
	}))
	srv.Domain = "mx.test"
	srv.TLSConfig = o.tls
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *server) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *server) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// dropAll closes every connection from the server's side, as an idle
// timeout would.
func (s *server) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.sessions {
		c.Conn().Close()
	}
}

type session struct {
	srv      *server
	conn     *gosmtp.Conn
	password string
	authed   bool
	cur      received
}

func (ss *session) AuthMechanisms() []string {
	if ss.password == "" {
		return nil
	}
	return []string{gosasl.Plain}
}

func (ss *session) Auth(mech string) (gosasl.Server, error) {
	return gosasl.NewPlainServer(func(identity, username, password string) error {
		if username != "nudge" || password != ss.password {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		ss.authed = true
		ss.srv.mu.Lock()
		ss.srv.authed = append(ss.srv.authed, username)
		ss.srv.mu.Unlock()
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if ss.password != "" && !ss.authed {
		return gosmtp.ErrAuthRequired
	}
	ss.cur = received{From: from}
	return nil
}

func (ss *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	switch to {
	case rcptTempFail:
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case rcptReject:
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.cur.To = append(ss.cur.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.cur.To) == 1 && ss.cur.To[0] == rcptVanish {
		ss.conn.Conn().Close()
		return errors.New("gone")
	}
	ss.cur.Data = data
	ss.srv.mu.Lock()
	ss.srv.msgs = append(ss.srv.msgs, ss.cur)
	ss.srv.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.cur = received{} }
func (ss *session) Logout() error { return nil }

var now = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

type fixedClock struct{}

func (fixedClock) Now() time.Time { return now }

func mustSender(t *testing.T, cfg smtp.Config) *smtp.Sender {
	t.Helper()
	s, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func plainConfig(srv *server) smtp.Config {
	return smtp.Config{
		Host: "127.0.0.1", Port: srv.port, TLS: smtp.NoTLS,
		From: "Shop <shop@mail.example.com>", Clock: fixedClock{}, Timeout: 5 * time.Second,
	}
}

func marketing(id, to string) *nudge.Outbound {
	return &nudge.Outbound{
		MessageID: id,
		Channel:   nudge.ChannelEmail,
		To:        to,
		Subject:   "Your cart is waiting — 10% off",
		HTML:      `<p>Hello <b>Ada</b>, your cart misses you.</p>`,
		Text:      "Hello Ada, your cart misses you.",
		Headers: map[string]string{
			"List-Unsubscribe":      "<https://nudge.example.com/u/tok123>, <mailto:unsub@mail.example.com?subject=tok123>",
			"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		},
	}
}

func TestSend(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	if s.Channel() != nudge.ChannelEmail {
		t.Errorf("Channel() = %q", s.Channel())
	}
	res, err := s.Send(context.Background(), marketing("msg_01JABC", "ada@example.org"))
	if err != nil {
		t.Fatal(err)
	}
	want := &nudge.SendResult{ProviderID: "msg_01JABC@mail.example.com", Status: nudge.MessageSent}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}

	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "shop@mail.example.com" || !cmp.Equal(got.To, []string{"ada@example.org"}) {
		t.Errorf("envelope = %q → %q", got.From, got.To)
	}
	m, err := netmail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	headers := map[string]string{
		"Subject":               subject,
		"Message-Id":            m.Header.Get("Message-Id"),
		"From":                  m.Header.Get("From"),
		"To":                    m.Header.Get("To"),
		"List-Unsubscribe":      m.Header.Get("List-Unsubscribe"),
		"List-Unsubscribe-Post": m.Header.Get("List-Unsubscribe-Post"),
	}
	wantHeaders := map[string]string{
		"Subject":               "Your cart is waiting — 10% off",
		"Message-Id":            "<msg_01JABC@mail.example.com>",
		"From":                  `"Shop" <shop@mail.example.com>`,
		"To":                    "<ada@example.org>",
		"List-Unsubscribe":      "<https://nudge.example.com/u/tok123>, <mailto:unsub@mail.example.com?subject=tok123>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	}
	if diff := cmp.Diff(wantHeaders, headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s\n%s", diff, got.Data)
	}
	if date, err := m.Header.Date(); err != nil || !date.Equal(now) {
		t.Errorf("Date = %v, %v; want %v", date, err, now)
	}

	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		body, _ := io.ReadAll(p)
		parts[ct] = strings.TrimSpace(string(body))
	}
	wantParts := map[string]string{
		"text/plain": "Hello Ada, your cart misses you.",
		"text/html":  `<p>Hello <b>Ada</b>, your cart misses you.</p>`,
	}
	if diff := cmp.Diff(wantParts, parts); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
}

func TestSendSinglePart(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	tests := []struct {
		name string
		m    nudge.Outbound
		ct   string
	}{
		{"text only", nudge.Outbound{MessageID: "t1", To: "a@example.org", Subject: "s", Text: "plain"}, "text/plain"},
		{"html only", nudge.Outbound{MessageID: "t2", To: "a@example.org", Subject: "s", HTML: "<p>x</p>"}, "text/html"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Send(context.Background(), &tt.m); err != nil {
				t.Fatal(err)
			}
			m, err := netmail.ReadMessage(bytes.NewReader(srv.messages()[i].Data))
			if err != nil {
				t.Fatal(err)
			}
			if ct, _, _ := mime.ParseMediaType(m.Header.Get("Content-Type")); ct != tt.ct {
				t.Errorf("Content-Type = %q, want %q", ct, tt.ct)
			}
		})
	}
}

func TestHeadersCannotReplaceEnvelope(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	m := marketing("msg_2", "ada@example.org")
	m.Headers["Bcc"] = "spy@example.net"
	m.Headers["message-id"] = "<forged@example.net>"
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()[0]
	if !cmp.Equal(got.To, []string{"ada@example.org"}) {
		t.Errorf("envelope recipients = %q", got.To)
	}
	if bytes.Contains(got.Data, []byte("forged")) || bytes.Contains(got.Data, []byte("spy@")) {
		t.Errorf("an Outbound header replaced a reserved one:\n%s", got.Data)
	}
}

func TestConnectionReuse(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	for i := range 5 {
		if _, err := s.Send(context.Background(), marketing(fmt.Sprint("seq_", i), "ada@example.org")); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.sessionCount(); n != 1 {
		t.Errorf("5 sequential sends used %d connections, want 1", n)
	}

	// The server drops the idle connection: the next send redials.
	srv.dropAll()
	if _, err := s.Send(context.Background(), marketing("after_drop", "ada@example.org")); err != nil {
		t.Fatalf("send after the server hung up: %v", err)
	}
	if n, want := len(srv.messages()), 6; n != want {
		t.Errorf("server has %d messages, want %d", n, want)
	}
	if n := srv.sessionCount(); n != 2 {
		t.Errorf("sessions = %d, want 2 (one redial)", n)
	}
}

func TestConcurrentSend(t *testing.T) {
	srv := startServer(t, serverOpts{})
	cfg := plainConfig(srv)
	cfg.PoolSize = 3
	s := mustSender(t, cfg)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), marketing(fmt.Sprint("par_", i), "ada@example.org")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(srv.messages()); n != 30 {
		t.Errorf("server got %d messages, want 30", n)
	}
	if n := srv.sessionCount(); n > 3 {
		t.Errorf("%d connections, want at most the pool size 3", n)
	}
}

func TestSendRefused(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	tests := []struct {
		name      string
		to        string
		code      string
		permanent bool
	}{
		{"4xx is temporary", rcptTempFail, "451", false},
		{"5xx is permanent", rcptReject, "550", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.Send(context.Background(), marketing("refused", tt.to))
			var se *nudge.SendError
			if !errors.As(err, &se) {
				t.Fatalf("Send = %+v, %v; want a *nudge.SendError", res, err)
			}
			if se.Code != tt.code || se.Permanent != tt.permanent {
				t.Errorf("SendError = %+v, want code %s permanent %v", se, tt.code, tt.permanent)
			}
			if !strings.Contains(se.Message, tt.code) {
				t.Errorf("Message %q lacks the server's reply", se.Message)
			}
		})
	}
	// The Sender recovers: the next message goes through.
	if _, err := s.Send(context.Background(), marketing("ok", "ada@example.org")); err != nil {
		t.Fatalf("send after refusals: %v", err)
	}
}

func TestSendOutcomeUnknown(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	_, err := s.Send(context.Background(), marketing("lost", rcptVanish))
	if err == nil {
		t.Fatal("Send succeeded; the server hung up before answering")
	}
	var se *nudge.SendError
	if errors.As(err, &se) {
		t.Fatalf("err = %v is a SendError; the outcome is unknown", err)
	}
}

func TestConnectFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := mustSender(t, smtp.Config{Host: "127.0.0.1", Port: port, TLS: smtp.NoTLS, From: "a@example.com", Timeout: 2 * time.Second})
	_, err = s.Send(context.Background(), marketing("x", "ada@example.org"))
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Permanent || se.Code != "connect" {
		t.Fatalf("err = %#v, want a temporary SendError \"connect\"", err)
	}
}

func TestSTARTTLSAndAuth(t *testing.T) {
	// httptest's certificate is valid for 127.0.0.1, and its client trusts it.
	ts := httptest.NewTLSServer(nil)
	defer ts.Close()
	roots := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	srv := startServer(t, serverOpts{tls: &tls.Config{Certificates: ts.TLS.Certificates}, password: "s3cret"})

	tests := []struct {
		name     string
		policy   string
		password string
		wantErr  bool
	}{
		{"starttls and plain auth", smtp.STARTTLS, "s3cret", false},
		{"wrong password", smtp.STARTTLS, "wrong", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := plainConfig(srv)
			cfg.TLS = tt.policy
			cfg.TLSConfig = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
			cfg.Username, cfg.Password, cfg.Auth = "nudge", tt.password, "plain"
			s := mustSender(t, cfg)
			_, err := s.Send(context.Background(), marketing("tls_"+tt.policy, "ada@example.org"))
			if tt.wantErr {
				var se *nudge.SendError
				if !errors.As(err, &se) || se.Permanent {
					t.Fatalf("err = %#v, want a temporary SendError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
	if n := len(srv.messages()); n != 1 {
		t.Errorf("server got %d messages, want 1", n)
	}
	srv.mu.Lock()
	authed, sessions := srv.authed, srv.sessions
	srv.mu.Unlock()
	if !cmp.Equal(authed, []string{"nudge"}) {
		t.Errorf("authenticated sessions = %q, want one as nudge", authed)
	}
	for _, c := range sessions {
		if _, ok := c.TLSConnectionState(); !ok {
			t.Error("a session did not use TLS")
		}
	}

	// A server without STARTTLS fails the mandatory policy before any mail.
	plain := startServer(t, serverOpts{})
	cfg := plainConfig(plain)
	cfg.TLS = smtp.STARTTLS
	s := mustSender(t, cfg)
	_, err := s.Send(context.Background(), marketing("no_tls", "ada@example.org"))
	var se *nudge.SendError
	if !errors.As(err, &se) || se.Permanent {
		t.Fatalf("err = %#v, want a temporary SendError", err)
	}
	if n := len(plain.messages()); n != 0 {
		t.Errorf("plain server got %d messages", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		cfg  smtp.Config
	}{
		{"no host", smtp.Config{}},
		{"bad policy", smtp.Config{Host: "h", TLS: "ssl3"}},
		{"bad port", smtp.Config{Host: "h", Port: 70000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := smtp.New(tt.cfg); nudge.ErrorCode(err) != nudge.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestSendBadAddress(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	_, err := s.Send(context.Background(), marketing("bad", "not an address"))
	var se *nudge.SendError
	if !errors.As(err, &se) || !se.Permanent {
		t.Fatalf("err = %#v, want a permanent SendError", err)
	}
	if n := srv.sessionCount(); n != 0 {
		t.Errorf("%d connections for an unsendable message", n)
	}
}

// BenchmarkSend measures sending a ~4 KB multipart message to the local
// go-smtp server (both in this process) over a pool of 4 connections.
func BenchmarkSend(b *testing.B) {
	srv := startServer(b, serverOpts{})
	cfg := plainConfig(srv)
	s, err := smtp.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m := marketing("bench", "ada@example.org")
	m.HTML = strings.Repeat(`<p>Hello <b>Ada</b>, the items in your cart are waiting for you.</p>`, 45)
	m.Text = strings.Repeat("Hello Ada, the items in your cart are waiting for you.\n", 20)
	b.ReportAllocs()
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Send(context.Background(), m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
