// Package smtp sends email over SMTP with github.com/wneessen/go-mail:
// STARTTLS or implicit TLS, SMTP AUTH, multipart HTML and text, a
// Message-ID that names the outbox message, and the extra headers of the
// Outbound (List-Unsubscribe and List-Unsubscribe-Post for RFC 8058).
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
// data is complete and Send retries once on a new connection.
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
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
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

	idle  chan *gsmtp.Client // dialed connections not in use
	slots chan struct{}      // one token per open connection, idle or not
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
	msg, id, err := s.build(m)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		conn, reused, err := s.get(ctx)
		if err != nil {
			return nil, err
		}
		err = s.client.SendWithSMTPClient(conn, msg)
		if err == nil || msg.IsDelivered() {
			// A failure after delivery (the RSET) costs only the connection.
			s.put(conn, err == nil)
			return &nudge.SendResult{ProviderID: id, Status: nudge.MessageSent}, nil
		}
		s.put(conn, false)
		se, retry := classify(err)
		if se != nil {
			if retry && reused && attempt == 0 {
				continue // a stale idle connection: try a fresh one
			}
			return nil, se
		}
		return nil, fmt.Errorf("smtp: send %s (outcome unknown): %w", id, err)
	}
}

// classify turns go-mail's error into a SendError, or nil when the
// server may have accepted the message. retry reports a connection failure
// before the message was complete, which a fresh connection may fix.
func classify(err error) (se *nudge.SendError, retry bool) {
	var me *mail.SendError
	if !errors.As(err, &me) {
		return nil, false
	}
	if code := me.ErrorCode(); code >= 400 && code < 600 {
		// 421: the server is closing this connection (an idle timeout,
		// a restart); another connection may do.
		return &nudge.SendError{Code: strconv.Itoa(code), Message: replyText(err), Permanent: code >= 500}, code == 421
	}
	switch me.Reason {
	case mail.ErrSMTPDataClose, mail.ErrAmbiguous:
		return nil, false
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return &nudge.SendError{Code: "invalid_message", Message: err.Error(), Permanent: true}, false
	}
	return &nudge.SendError{Code: "connection", Message: err.Error()}, true
}

// replyText returns the server's reply when err carries one.
func replyText(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return strconv.Itoa(te.Code) + " " + te.Msg
	}
	return err.Error()
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

// reserved are the headers the Sender sets itself; an Outbound's Headers
// cannot replace them.
var reserved = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Subject": true, "Date": true,
	"Message-Id": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
}

// build renders m as a go-mail message and returns it with its Message-ID.
func (s *Sender) build(m *nudge.Outbound) (*mail.Msg, string, error) {
	msg := mail.NewMsg()
	from := cmp.Or(m.From, s.cfg.From)
	if err := msg.From(from); err != nil {
		return nil, "", &nudge.SendError{Code: "invalid_from", Message: fmt.Sprintf("sender %q: %v", from, err), Permanent: true}
	}
	if err := msg.To(m.To); err != nil {
		return nil, "", &nudge.SendError{Code: "invalid_to", Message: fmt.Sprintf("recipient %q: %v", m.To, err), Permanent: true}
	}
	for name, value := range m.Headers {
		if reserved[textproto.CanonicalMIMEHeaderKey(name)] {
			continue
		}
		msg.SetGenHeader(mail.Header(name), value)
	}
	msg.Subject(m.Subject)
	msg.SetDateWithValue(s.cfg.Clock.Now())
	id := messageID(m.MessageID, s.cfg.MessageIDDomain)
	msg.SetMessageIDWithValue(id)
	msg.SetUserAgent("Nudge")
	switch {
	case m.HTML != "" && m.Text != "":
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	case m.HTML != "":
		msg.SetBodyString(mail.TypeTextHTML, m.HTML)
	default:
		msg.SetBodyString(mail.TypeTextPlain, m.Text)
	}
	return msg, id, nil
}

// messageID returns "local@domain" for a Message-ID header: the outbox
// message's ID, so bounces and replies lead back to it, with characters a
// Message-ID cannot hold replaced. A message without an ID gets a random one.
func messageID(local, domain string) string {
	if local == "" {
		var b [16]byte
		rand.Read(b[:])
		local = hex.EncodeToString(b[:])
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-/=?^_`{|}~.", r)) {
				return r
			}
			return '-'
		}, s)
	}
	return clean(local) + "@" + clean(domain)
}
