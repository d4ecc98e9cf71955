package delivery_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

const (
	accountSID = "AC00000000000000000000000000000001"
	authToken  = "secret-token"
	fromNumber = "+15005550006"
)

// Recipients the fake Twilio answers in a fixed way, like Twilio's magic
// test numbers.
const (
	toOK       = "+14155550100"
	toInvalid  = "+15005550001" // 400, 21211
	toOptedOut = "+15005550004" // 400, 21610
	toBusyOnce = "+14155550429" // 429 with Retry-After: 7 the first time, then accepted
	toBroken   = "+14155550500" // 500, always
	toHang     = "+14155550999" // never answers
)

// fakeTwilio is a local server speaking Twilio's Messages wire format.
type fakeTwilio struct {
	srv  *httptest.Server
	seq  atomic.Int64
	hang chan struct{}

	mu    sync.Mutex
	calls map[string]int // by To
	body  map[string]string
}

func newFakeTwilio(t testing.TB) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{hang: make(chan struct{}), calls: map[string]int{}, body: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.hang)
		f.srv.Close()
	})
	return f
}

func (f *fakeTwilio) count(to string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[to]
}

func (f *fakeTwilio) lastBody(to string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body[to]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func twilioError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": msg, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+accountSID+"/Messages.json" {
		twilioError(w, 404, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != accountSID || pass != authToken {
		twilioError(w, 401, 20003, "Authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, 400, 20001, err.Error())
		return
	}
	to := r.PostForm.Get("To")
	f.mu.Lock()
	f.calls[to]++
	n := f.calls[to]
	f.body[to] = r.PostForm.Get("Body")
	f.mu.Unlock()
	switch {
	case to == toInvalid:
		twilioError(w, 400, 21211, "The 'To' number "+to+" is not a valid phone number.")
		return
	case to == toOptedOut:
		twilioError(w, 400, 21610, "Attempt to send to unsubscribed recipient")
		return
	case to == toBusyOnce && n == 1:
		w.Header().Set("Retry-After", "7")
		twilioError(w, 429, 20429, "Too Many Requests")
		return
	case to == toBroken:
		twilioError(w, 500, 20500, "Internal Server Error")
		return
	case to == toHang:
		select {
		case <-r.Context().Done():
		case <-f.hang:
		}
		return
	}
	sid := fmt.Sprintf("SM%032x", f.seq.Add(1))
	writeJSON(w, 201, map[string]any{
		"account_sid": accountSID, "api_version": "2010-04-01", "body": r.PostForm.Get("Body"),
		"date_created": "Thu, 24 Aug 2023 05:01:45 +0000", "date_sent": nil,
		"date_updated": "Thu, 24 Aug 2023 05:01:45 +0000", "direction": "outbound-api",
		"error_code": nil, "error_message": nil, "from": r.PostForm.Get("From"),
		"messaging_service_sid": nil, "num_media": "0", "num_segments": "1", "price": nil,
		"price_unit": "USD", "sid": sid, "status": "queued", "to": to,
		"uri": "/2010-04-01/Accounts/" + accountSID + "/Messages/" + sid + ".json",
	})
}

// mailSink is a real SMTP server (emersion/go-smtp) on loopback that keeps
// what it receives.
type mailSink struct {
	port int

	mu   sync.Mutex
	msgs []mailReceived
	n    atomic.Int64
	keep bool
}

type mailReceived struct {
	From string
	To   []string
	Data []byte
}

func startMailSink(t testing.TB, keep bool) *mailSink {
	t.Helper()
	s := &mailSink{keep: keep}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		return &mailSession{sink: s}, nil
	}))
	srv.Domain = "mx.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *mailSink) messages() []mailReceived {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mailReceived(nil), s.msgs...)
}

type mailSession struct {
	sink *mailSink
	cur  mailReceived
}

func (ss *mailSession) Mail(from string, _ *gosmtp.MailOptions) error {
	ss.cur = mailReceived{From: from}
	return nil
}

func (ss *mailSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if to == "nobody@example.net" {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.cur.To = append(ss.cur.To, to)
	return nil
}

func (ss *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(ss.cur.To) == 0 {
		return errors.New("no recipients")
	}
	ss.sink.n.Add(1)
	if ss.sink.keep {
		ss.cur.Data = data
		ss.sink.mu.Lock()
		ss.sink.msgs = append(ss.sink.msgs, ss.cur)
		ss.sink.mu.Unlock()
	}
	return nil
}

func (ss *mailSession) Reset()        { ss.cur = mailReceived{} }
func (ss *mailSession) Logout() error { return nil }
