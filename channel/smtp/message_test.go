package smtp_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/smtp"
)

// normalize makes line ends LF and drops the last one, as a reader of the
// mail sees the text.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.TrimSuffix(strings.ReplaceAll(s, "\r", "\n"), "\n")
}

// decodePart returns a part's body as its reader sees it.
func decodePart(t *testing.T, h netmail.Header, body io.Reader) string {
	t.Helper()
	if strings.EqualFold(h.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Bodies arrive as they were written, whatever they hold: lines that
// start with a dot (which SMTP would take for the end of the message
// without dot-stuffing), a lone "." line, text that is not ASCII, lines
// longer than SMTP allows, mixed line ends.
func TestSendBodies(t *testing.T) {
	long := strings.Repeat("0123456789", 150) // 1,500 bytes on one line
	tests := []struct {
		name, body string
	}{
		{"plain", "Hello Ada,\nyour cart misses you.\n"},
		{"leading dots", ".hidden\n..two\nmiddle\n.\n.end"},
		{"dot line then more", "a\r\n.\r\nb\r\n"},
		{"not ascii", "Café — 10% off, 🎉 ünïcode = fine\n.é"},
		{"long line", "start\n" + long + "\nend"},
		{"long ascii line with dots", "." + long + "\n." + long},
		{"equals and trailing space", "a=b \nc=3D \t\n"},
		{"mixed line ends", "one\r\ntwo\nthree\r\n"},
	}
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	n := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Text only, then multipart with the body as both parts.
			text := &nudge.Outbound{MessageID: "b", To: "ada@example.org", Subject: tt.name, Text: tt.body}
			if _, err := s.Send(context.Background(), text); err != nil {
				t.Fatal(err)
			}
			html := "<p>" + tt.body + "</p>"
			multi := &nudge.Outbound{MessageID: "m", To: "ada@example.org", Subject: tt.name, Text: tt.body, HTML: html}
			if _, err := s.Send(context.Background(), multi); err != nil {
				t.Fatal(err)
			}
			msgs := srv.messages()
			if len(msgs) != n+2 {
				t.Fatalf("server has %d messages, want %d", len(msgs), n+2)
			}
			single, multipartMsg := msgs[n], msgs[n+1]
			n += 2

			m, err := netmail.ReadMessage(bytes.NewReader(single.Data))
			if err != nil {
				t.Fatal(err)
			}
			if got := decodePart(t, m.Header, m.Body); normalize(got) != normalize(tt.body) {
				t.Errorf("text body = %q, want %q\n%s", got, tt.body, single.Data)
			}
			for _, line := range strings.Split(string(single.Data), "\r\n") {
				if len(line) > 998 {
					t.Errorf("a line of %d bytes went out; SMTP allows 998", len(line))
				}
			}

			m, err = netmail.ReadMessage(bytes.NewReader(multipartMsg.Data))
			if err != nil {
				t.Fatal(err)
			}
			_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			mr := multipart.NewReader(m.Body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				ct, ps, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
				if ps["charset"] != "UTF-8" {
					t.Errorf("%s charset = %q", ct, ps["charset"])
				}
				b, _ := io.ReadAll(p) // multipart.Reader decodes quoted-printable itself
				got[ct] = normalize(string(b))
			}
			want := map[string]string{"text/plain": normalize(tt.body), "text/html": normalize(html)}
			for ct := range want {
				if got[ct] != want[ct] {
					t.Errorf("%s = %q, want %q", ct, got[ct], want[ct])
				}
			}
		})
	}
}

// Header values cannot add headers, long ones are folded and read back
// whole, and text that is not ASCII is encoded.
func TestSendHeaderValues(t *testing.T) {
	srv := startServer(t, serverOpts{})
	s := mustSender(t, plainConfig(srv))
	long := "<https://nudge.example.com/u/" + strings.Repeat("t", 120) + ">, <mailto:unsub@mail.example.com?subject=" + strings.Repeat("k", 90) + ">"
	m := &nudge.Outbound{
		MessageID: "h1", To: "Ada Lovelace <ada@example.org>", Text: "x",
		Subject: "Hello\r\nBcc: spy@example.net",
		Headers: map[string]string{
			"List-Unsubscribe": long,
			"X-Campaign":       "spring\nX-Injected: yes",
			"X-Note":           "naïve résumé",
			"Bad Name":         "dropped",
		},
	}
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.messages()[0]
	msg, err := netmail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	note, err := dec.DecodeHeader(msg.Header.Get("X-Note"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"List-Unsubscribe": long,
		"X-Campaign":       "spring X-Injected: yes",
		"Subject":          "Hello Bcc: spy@example.net",
		"To":               `"Ada Lovelace" <ada@example.org>`,
		"X-Injected":       "",
		"Bcc":              "",
		"Bad Name":         "",
	} {
		if v := msg.Header.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if note != "naïve résumé" {
		t.Errorf("X-Note = %q", note)
	}
	head, _, _ := bytes.Cut(got.Data, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 998 || !isASCII(line) {
			t.Errorf("header line %q: longer than 998 bytes or not ASCII", line)
		}
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// lockstep is an SMTP server that does not offer PIPELINING and refuses a
// command sent before the reply to the previous one.
type lockstep struct {
	port int

	mu        sync.Mutex
	msgs      []string
	pipelined []string
}

func startLockstep(t *testing.T) *lockstep {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l := &lockstep{port: ln.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go l.serve(c)
		}
	}()
	return l
}

func (l *lockstep) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	reply := func(s string) { io.WriteString(c, s+"\r\n") }
	reply("220 lockstep ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		if r.Buffered() > 0 {
			l.mu.Lock()
			l.pipelined = append(l.pipelined, cmd)
			l.mu.Unlock()
			reply("503 5.5.0 PIPELINING is not offered")
			return
		}
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			reply("250-lockstep\r\n250 ENHANCEDSTATUSCODES")
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), cmd == "RSET", cmd == "NOOP":
			reply("250 2.0.0 OK")
		case cmd == "DATA":
			reply("354 go ahead")
			var data strings.Builder
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if line == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(line, "."))
			}
			l.mu.Lock()
			l.msgs = append(l.msgs, data.String())
			l.mu.Unlock()
			reply("250 2.0.0 queued")
		case cmd == "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 5.5.2 unknown command")
		}
	}
}

// A server that does not offer PIPELINING gets one command at a time.
func TestSendWithoutPipelining(t *testing.T) {
	l := startLockstep(t)
	s := mustSender(t, smtp.Config{Host: "127.0.0.1", Port: l.port, TLS: smtp.NoTLS,
		From: "shop@mail.example.com", Clock: fixedClock{}, Timeout: 5 * time.Second})
	for i := range 3 {
		if _, err := s.Send(context.Background(), &nudge.Outbound{MessageID: fmt.Sprint("l", i), To: "ada@example.org",
			Subject: "s", Text: fmt.Sprintf("message %d\n.dot", i)}); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pipelined) > 0 {
		t.Errorf("commands sent before the previous reply: %q", l.pipelined)
	}
	if len(l.msgs) != 3 {
		t.Fatalf("server got %d messages, want 3", len(l.msgs))
	}
	if !strings.HasSuffix(l.msgs[2], "message 2\r\n.dot\r\n") {
		t.Errorf("last message ends %q", l.msgs[2][max(0, len(l.msgs[2])-40):])
	}
}
