package smtp

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// A message is written once, straight into the form it has on the wire
// after DATA: CRLF line ends, a dot doubled at the start of a line, and
// the closing ".\r\n". A body part that is ASCII with lines of at most 998
// bytes goes as 7bit, as written; any other is quoted-printable.

// reserved are the headers the Sender sets itself; an Outbound's Headers
// cannot replace them.
var reserved = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Subject": true, "Date": true,
	"Message-Id": true, "Mime-Version": true, "Content-Type": true, "Content-Transfer-Encoding": true,
	"User-Agent": true,
}

// envelope is a built message: its SMTP envelope and its data.
type envelope struct {
	from, to string // addresses only, for MAIL FROM and RCPT TO
	id       string // the Message-ID without angle brackets
	data     []byte // the DATA payload, ending "\r\n.\r\n"
	utf8     bool   // an address needs SMTPUTF8
}

// addresses caches parsed senders: a Sender sends from one or a few
// addresses, and parsing one costs more than the rest of the headers.
type addresses struct {
	mu sync.Mutex
	m  map[string]*netmail.Address
}

func (a *addresses) parse(s string) (*netmail.Address, error) {
	a.mu.Lock()
	addr, ok := a.m[s]
	a.mu.Unlock()
	if ok {
		return addr, nil
	}
	addr, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if a.m == nil || len(a.m) >= 64 {
		a.m = map[string]*netmail.Address{}
	}
	a.m[s] = addr
	a.mu.Unlock()
	return addr, nil
}

// build renders m for the wire.
func (s *Sender) build(m *nudge.Outbound) (*envelope, error) {
	fromText := cmp.Or(m.From, s.cfg.From)
	from, err := s.senders.parse(fromText)
	if err != nil {
		return nil, &nudge.SendError{Code: "invalid_from", Message: fmt.Sprintf("sender %q: %v", fromText, err), Permanent: true}
	}
	to, err := netmail.ParseAddress(m.To)
	if err != nil {
		return nil, &nudge.SendError{Code: "invalid_to", Message: fmt.Sprintf("recipient %q: %v", m.To, err), Permanent: true}
	}
	e := &envelope{from: from.Address, to: to.Address, id: messageID(m.MessageID, s.cfg.MessageIDDomain)}
	e.utf8 = !isASCII(e.from) || !isASCII(e.to)

	w := &wire{b: getBuf(1024 + len(m.HTML) + len(m.Text) + len(m.HTML)/8 + len(m.Text)/8)}
	w.header("Date", s.date())
	w.header("From", from.String())
	w.header("To", to.String())
	w.header("Subject", encodeHeader(m.Subject))
	w.header("Message-ID", "<"+e.id+">")
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		key := textproto.CanonicalMIMEHeaderKey(name)
		if reserved[key] || !validHeaderName(name) {
			continue
		}
		w.header(key, encodeHeader(m.Headers[name]))
	}
	w.header("User-Agent", "Nudge")
	w.header("MIME-Version", "1.0")
	switch {
	case m.HTML != "" && m.Text != "":
		boundary := newBoundary()
		w.header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		w.raw("\r\n")
		w.raw("--" + boundary + "\r\n")
		w.part("text/plain", m.Text)
		w.raw("--" + boundary + "\r\n")
		w.part("text/html", m.HTML)
		w.raw("--" + boundary + "--\r\n")
	case m.HTML != "":
		w.part("text/html", m.HTML)
	default:
		w.part("text/plain", m.Text)
	}
	w.raw(".\r\n")
	e.data = w.b
	return e, nil
}

// bufs holds the buffers of messages sent: a message is some kilobytes,
// built and sent once.
var bufs sync.Pool

// getBuf returns an empty buffer of at least size bytes.
func getBuf(size int) []byte {
	if b, ok := bufs.Get().(*[]byte); ok && cap(*b) >= size {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// putBuf gives a buffer of getBuf back; the caller no longer uses it.
func putBuf(b []byte) {
	if cap(b) <= 1<<20 {
		bufs.Put(&b)
	}
}

// dateLine is the Date header of one second.
type dateLine struct {
	sec  int64
	text string
}

// date returns the Date header for now: formatted once a second.
func (s *Sender) date() string {
	now := s.cfg.Clock.Now()
	if d := s.dateLine.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateLine{sec: now.Unix(), text: now.Format(time.RFC1123Z)}
	s.dateLine.Store(d)
	return d.text
}

// wire builds a message's DATA payload.
type wire struct {
	b []byte
}

func (w *wire) raw(s string) { w.b = append(w.b, s...) }

// header writes a header field, folded at spaces to lines of about 78
// characters where it can be. value holds no CR or LF (encodeHeader).
func (w *wire) header(name, value string) {
	w.raw(name)
	w.raw(": ")
	n := len(name) + 2
	for len(value) > 0 {
		if n+len(value) <= 78 {
			w.raw(value)
			break
		}
		// The last space that keeps the line within 78, else the first.
		cut := strings.LastIndexByte(value[:min(len(value), max(1, 78-n))], ' ')
		if cut <= 0 {
			cut = strings.IndexByte(value[1:], ' ') + 1
			if cut <= 0 {
				w.raw(value)
				break
			}
		}
		w.raw(value[:cut])
		w.raw("\r\n")
		value = value[cut:] // keeps the space: the folded line starts with it
		n = 0
	}
	w.raw("\r\n")
}

// part writes a body part's headers and its body: as it is when it can go
// as 7bit, quoted-printable otherwise.
func (w *wire) part(contentType, body string) {
	if sevenBit(body) {
		w.raw("Content-Type: " + contentType + "; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
		w.body(body)
		return
	}
	w.raw("Content-Type: " + contentType + "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	var qb strings.Builder
	qb.Grow(len(body) + len(body)/4)
	qp := quotedprintable.NewWriter(&qb)
	qp.Write([]byte(body))
	qp.Close()
	w.body(qb.String())
}

// body appends text with CRLF line ends and a dot doubled where a line
// starts with one (RFC 5321 4.5.2), ending it with a line end.
func (w *wire) body(s string) {
	if strings.IndexByte(s, '\r') < 0 {
		// Only LF line ends, the common case: a line at a time.
		for len(s) > 0 {
			line := s
			i := strings.IndexByte(s, '\n')
			if i >= 0 {
				line, s = s[:i], s[i+1:]
			} else {
				s = ""
			}
			if len(line) > 0 && line[0] == '.' {
				w.b = append(w.b, '.')
			}
			w.b = append(w.b, line...)
			w.b = append(w.b, '\r', '\n')
		}
		return
	}
	w.bodyAny(s)
}

// bodyAny is body for text with any line ends: CRLF, CR or LF.
func (w *wire) bodyAny(s string) {
	bol := true
	for len(s) > 0 {
		if bol && s[0] == '.' {
			w.b = append(w.b, '.')
		}
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			w.b = append(w.b, s...)
			bol = false
			break
		}
		w.b = append(w.b, s[:i]...)
		w.b = append(w.b, '\r', '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
		bol = true
	}
	if !bol {
		w.b = append(w.b, '\r', '\n')
	}
}

// sevenBit reports whether a body can go as 7bit: ASCII without NUL, and
// no line longer than 998 bytes (RFC 5322 2.1.1).
func sevenBit(s string) bool {
	if strings.IndexByte(s, '\r') < 0 {
		// Only LF line ends, the common case: a line at a time.
		for len(s) > 0 {
			line := s
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				line, s = s[:i], s[i+1:]
			} else {
				s = ""
			}
			if len(line) > 998 || !plainASCII(line) {
				return false
			}
		}
		return true
	}
	return sevenBitAny(s)
}

// sevenBitAny is sevenBit for text with any line ends.
func sevenBitAny(s string) bool {
	line := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			line = 0
		case c == 0 || c >= 0x80:
			return false
		default:
			line++
			if line > 998 {
				return false
			}
		}
	}
	return true
}

// encodeHeader makes a header value one line of ASCII: line breaks become
// spaces (a value must not add headers), and a value that is not ASCII is
// encoded as RFC 2047 words.
func encodeHeader(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
	}
	if isASCII(v) {
		return v
	}
	return mime.QEncoding.Encode("UTF-8", v)
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// plainASCII reports whether s is ASCII without NUL, eight bytes at a
// time.
func plainASCII(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(s) >= 8 {
		v := binary.LittleEndian.Uint64([]byte(s[:8]))
		// A high bit set, or a zero byte (v-ones borrows into its high bit).
		if (v|(v-ones)&^v)&highs != 0 {
			return false
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// newBoundary returns a multipart boundary: 128 random bits, which no
// body contains by chance.
func newBoundary() string {
	var b [16]byte
	rand.Read(b[:])
	return "nudge-" + hex.EncodeToString(b[:])
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
