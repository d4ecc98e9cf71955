// Package smtp sends email over SMTP: STARTTLS or implicit TLS, SMTP
// AUTH, multipart HTML and text, a Message-ID that names the outbox
// message, and the extra headers of the Outbound (List-Unsubscribe and
// List-Unsubscribe-Post for RFC 8058). github.com/wneessen/go-mail dials,
// starts TLS and authenticates; the Sender writes the message and the
// mail transaction itself, with PIPELINING (RFC 2920) where the server
// offers it: MAIL, RCPT and DATA in one write, the message in another.
//
// # Connections
//
// A Sender keeps up to Config.PoolSize connections dialed and reuses them:
// a Send takes an idle connection, or dials one while fewer than PoolSize
// are open, or waits for one to come back. So Send is safe for concurrent
// use and as parallel as the pool. A connection that returns any error is
// closed and the next Send dials afresh. Idle connections are not probed
// (no NOOP, no RSET after a message: one round trip less each); when the
// server has dropped one meanwhile, the failure shows before the message
// data is sent and Send retries once on a new connection.
//
// # Errors
//
// An SMTP reply 4xx is a temporary *nudge.SendError whose Code is the reply
// code, a 5xx a permanent one. Failing to connect, to start TLS or to
// authenticate is a temporary *nudge.SendError too (Code "connect" or the
// reply code): nothing was sent, and fixing the configuration should send
// the queued mail. A connection lost after the message's final dot and
// before the server's answer is a plain error: the server may have
// accepted the message.
//
// Send does not abandon a conversation half-way when its context ends:
// Config.Timeout bounds each step instead, so a connection is never left
// in an unknown state. The context bounds waiting for a connection and
// dialing.
package smtp

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nudge/nudge"
	mail "github.com/wneessen/go-mail"
	gsmtp "github.com/wneessen/go-mail/smtp"
)

// TLS policies.
const (
	STARTTLS      = "starttls"      // STARTTLS required (the default)
	Opportunistic = "opportunistic" // STARTTLS when the server offers it
	ImplicitTLS   = "tls"           // TLS from the first byte (port 465)
	NoTLS         = "none"          // plain text: local relays and tests only
)

// Config configures a Sender.
type Config struct {
	Host string // required
	Port int    // default 587, or 465 with ImplicitTLS
	TLS  string // STARTTLS (default), Opportunistic, ImplicitTLS or NoTLS
	// TLSConfig overrides the TLS client configuration (a private CA, …).
	TLSConfig *tls.Config
	Username  string
	Password  string
	// Auth is the SMTP AUTH mechanism: PLAIN, LOGIN, CRAM-MD5,
	// SCRAM-SHA-256, …; default AUTODISCOVER (the strongest the server
	// offers) when Username is set, none otherwise.
	Auth string
	HELO string // default the machine's host name
	// From is the sender address when an Outbound has none.
	From string
	// MessageIDDomain is the right side of Message-IDs; default the
	// domain of From.
	MessageIDDomain string
	Timeout         time.Duration // per connection step; default 15s
	PoolSize        int           // connections kept; default 4
	Clock           nudge.Clock   // for the Date header; default nudge.SystemClock
}

// Sender sends email over SMTP. It is safe for concurrent use; Close it
// to hang up its connections.
type Sender struct {
	cfg    Config
	client *mail.Client // holds the settings; connections live in the pool

	idle     chan *gsmtp.Client // dialed connections not in use
	slots    chan struct{}      // one token per open connection, idle or not
	senders  addresses
	dateLine atomic.Pointer[dateLine]
}

var _ nudge.Sender = (*Sender)(nil)

// New returns a Sender, or an EINVALID error. It does not connect.
func New(cfg Config) (*Sender, error) {
	cfg.TLS = strings.ToLower(cmp.Or(cfg.TLS, STARTTLS))
	if cfg.Host == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "smtp: host is required")
	}
	if cfg.PoolSize < 0 || cfg.Port < 0 || cfg.Port > 65535 {
		return nil, nudge.Errorf(nudge.EINVALID, "smtp: port %d or pool size %d out of range", cfg.Port, cfg.PoolSize)
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 15*time.Second)
	cfg.PoolSize = cmp.Or(cfg.PoolSize, 4)
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	if cfg.MessageIDDomain == "" {
		if _, domain, ok := strings.Cut(cfg.From, "@"); ok {
			cfg.MessageIDDomain = strings.Trim(domain, "> ")
		}
	}
	cfg.MessageIDDomain = cmp.Or(cfg.MessageIDDomain, cfg.Host)

	opts := []mail.Option{mail.WithTimeout(cfg.Timeout), mail.WithoutNoop(), mail.WithoutRset()}
	switch cfg.TLS {
	case STARTTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory), mail.WithPort(cmp.Or(cfg.Port, 587)))
	case Opportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic), mail.WithPort(cmp.Or(cfg.Port, 587)))
	case ImplicitTLS:
		opts = append(opts, mail.WithSSL(), mail.WithPort(cmp.Or(cfg.Port, 465)))
	case NoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS), mail.WithPort(cmp.Or(cfg.Port, 587)))
	default:
		return nil, nudge.Errorf(nudge.EINVALID, "smtp: TLS policy %q is not one of starttls, opportunistic, tls, none", cfg.TLS)
	}
	if cfg.TLSConfig != nil {
		opts = append(opts, mail.WithTLSConfig(cfg.TLSConfig))
	}
	if cfg.Username != "" || cfg.Auth != "" {
		auth := mail.SMTPAuthType(strings.ToUpper(cmp.Or(cfg.Auth, string(mail.SMTPAuthAutoDiscover))))
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(cfg.Username), mail.WithPassword(cfg.Password))
	}
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	client, err := mail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, nudge.Errorf(nudge.EINVALID, "smtp: %v", err)
	}
	return &Sender{
		cfg:    cfg,
		client: client,
		idle:   make(chan *gsmtp.Client, cfg.PoolSize),
		slots:  make(chan struct{}, cfg.PoolSize),
	}, nil
}

// Channel returns nudge.ChannelEmail.
func (s *Sender) Channel() string { return nudge.ChannelEmail }

// Close hangs up the idle connections. Sends still running finish and
// close theirs; a Send after Close dials again.
func (s *Sender) Close() error {
	var errs []error
	for {
		select {
		case c := <-s.idle:
			errs = append(errs, s.client.CloseWithSMTPClient(c))
			<-s.slots
		default:
			return errors.Join(errs...)
		}
	}
}

// Send delivers m to the SMTP server. The result's ProviderID is the
// Message-ID without angle brackets.
func (s *Sender) Send(ctx context.Context, m *nudge.Outbound) (*nudge.SendResult, error) {
	e, err := s.build(m)
	if err != nil {
		return nil, err
	}
	defer putBuf(e.data)
	for attempt := 0; ; attempt++ {
		conn, reused, err := s.get(ctx)
		if err != nil {
			return nil, err
		}
		err = s.transact(conn, e)
		s.put(conn, err == nil)
		if err == nil {
			return &nudge.SendResult{ProviderID: e.id, Status: nudge.MessageSent}, nil
		}
		var te *txError
		if !errors.As(err, &te) || te.unknown {
			return nil, fmt.Errorf("smtp: send %s (outcome unknown): %w", e.id, err)
		}
		se, retry := te.sendError()
		if retry && reused && attempt == 0 {
			continue // a stale idle connection: try a fresh one
		}
		return nil, se
	}
}

// txError is a failed mail transaction: at which command, and whether the
// server may have accepted the message all the same (the connection ended
// after the message's final dot and before the server's answer).
type txError struct {
	cmd     string
	unknown bool
	err     error
}

func (e *txError) Error() string { return e.cmd + ": " + e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

// sendError turns a refusal or a connection lost before the message was
// complete into a SendError. retry reports a failure a fresh connection
// may not have: a lost connection, or 421 (the server is closing this
// one: an idle timeout, a restart).
func (e *txError) sendError() (se *nudge.SendError, retry bool) {
	var pe *textproto.Error
	if errors.As(e.err, &pe) && pe.Code >= 400 && pe.Code < 600 {
		return &nudge.SendError{Code: strconv.Itoa(pe.Code), Message: strconv.Itoa(pe.Code) + " " + pe.Msg, Permanent: pe.Code >= 500}, pe.Code == 421
	}
	return &nudge.SendError{Code: "connection", Message: "smtp: " + e.Error()}, true
}

// transact runs one mail transaction on conn. With PIPELINING (RFC 2920)
// MAIL, RCPT and DATA go in one write and their replies are read
// together, then the message and its final dot in another: two round trips
// where a command at a time takes four. The connection is left ready for
// the next message only when transact returns nil; after an error it must
// be closed (a refusal leaves a transaction open, which a new connection
// does not need to RSET).
func (s *Sender) transact(conn *gsmtp.Client, e *envelope) error {
	if err := conn.UpdateDeadline(s.cfg.Timeout); err != nil {
		return &txError{cmd: "MAIL", err: err}
	}
	mailCmd := "MAIL FROM:<" + e.from + ">"
	if e.utf8 {
		if ok, _ := conn.Extension("SMTPUTF8"); ok {
			mailCmd += " SMTPUTF8"
		}
	}
	cmds := [...]struct {
		line string
		code int
	}{{mailCmd, 250}, {"RCPT TO:<" + e.to + ">", 25}, {"DATA", 354}}
	w, r := conn.Text.Writer.W, &conn.Text.Reader
	if ok, _ := conn.Extension("PIPELINING"); ok {
		for _, c := range cmds {
			w.WriteString(c.line)
			w.WriteString("\r\n")
		}
		if err := w.Flush(); err != nil {
			return &txError{cmd: "MAIL", err: err}
		}
		// Every reply is read, so that a refusal is the one reported.
		var first error
		for _, c := range cmds {
			if _, _, err := r.ReadResponse(c.code); err != nil && first == nil {
				first = &txError{cmd: strings.Fields(c.line)[0], err: err}
			}
		}
		if first != nil {
			return first
		}
	} else {
		for _, c := range cmds {
			w.WriteString(c.line)
			w.WriteString("\r\n")
			if err := w.Flush(); err != nil {
				return &txError{cmd: strings.Fields(c.line)[0], err: err}
			}
			if _, _, err := r.ReadResponse(c.code); err != nil {
				return &txError{cmd: strings.Fields(c.line)[0], err: err}
			}
		}
	}
	if err := conn.UpdateDeadline(s.cfg.Timeout); err != nil {
		return &txError{cmd: "DATA", err: err}
	}
	// A write that fails did not deliver the final dot: the server has no
	// message. Once the dot is out, only the reply tells.
	if _, err := w.Write(e.data); err != nil {
		return &txError{cmd: "DATA", err: err}
	}
	if err := w.Flush(); err != nil {
		return &txError{cmd: "DATA", err: err}
	}
	if _, _, err := r.ReadResponse(250); err != nil {
		var pe *textproto.Error
		return &txError{cmd: "DATA", err: err, unknown: !errors.As(err, &pe)}
	}
	return nil
}

// get returns an idle connection, or a new one while the pool has room,
// or waits for one to come back.
func (s *Sender) get(ctx context.Context) (conn *gsmtp.Client, reused bool, err error) {
	select {
	case c := <-s.idle:
		return c, true, nil
	default:
	}
	select {
	case c := <-s.idle:
		return c, true, nil
	case s.slots <- struct{}{}:
		c, err := s.client.DialToSMTPClientWithContext(ctx)
		if err != nil {
			<-s.slots
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			code := "connect"
			var te *textproto.Error
			if errors.As(err, &te) {
				code = strconv.Itoa(te.Code)
			}
			return nil, false, &nudge.SendError{Code: code, Message: "smtp: connect: " + err.Error()}
		}
		return c, false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// put returns a healthy connection to the pool and closes any other.
func (s *Sender) put(c *gsmtp.Client, healthy bool) {
	if healthy {
		s.idle <- c // never blocks: at most PoolSize connections exist
		return
	}
	_ = c.Close()
	<-s.slots
}
