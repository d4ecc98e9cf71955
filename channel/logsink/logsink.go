// Package logsink is the provider of serve and demo: it records what would
// have been sent, in a bounded in-memory ring and as one slog line per
// message, and touches no network. Every send succeeds with a fresh
// provider ID, so journeys run end to end without real providers.
package logsink

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// DefaultCapacity is how many messages a Sender keeps by default.
const DefaultCapacity = 1000

// Config configures a Sender.
type Config struct {
	Channel  string       // required: nudge.ChannelEmail, nudge.ChannelSMS, …
	Logger   *slog.Logger // default slog.Default()
	Clock    nudge.Clock  // default nudge.SystemClock
	Capacity int          // messages kept; default DefaultCapacity, the oldest go first
}

// Record is one message the sink accepted.
type Record struct {
	ProviderID string
	At         time.Time
	Outbound   nudge.Outbound
}

// Sender records messages instead of sending them. It is safe for
// concurrent use.
type Sender struct {
	cfg Config

	mu   sync.Mutex
	ring []Record // ring[next] is the oldest once the ring is full
	next int
	full bool
}

var _ nudge.Sender = (*Sender)(nil)

// New returns a Sender for cfg.Channel, or an EINVALID error.
func New(cfg Config) (*Sender, error) {
	if cfg.Channel == "" {
		return nil, nudge.Errorf(nudge.EINVALID, "logsink: a channel is required")
	}
	if cfg.Capacity < 0 {
		return nil, nudge.Errorf(nudge.EINVALID, "logsink: capacity %d is negative", cfg.Capacity)
	}
	cfg.Capacity = cmp.Or(cfg.Capacity, DefaultCapacity)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	if cfg.Clock == nil {
		cfg.Clock = nudge.SystemClock{}
	}
	return &Sender{cfg: cfg, ring: make([]Record, 0, cfg.Capacity)}, nil
}

// Channel returns the configured channel.
func (s *Sender) Channel() string { return s.cfg.Channel }

// Send records m and logs it. It fails only when ctx is done.
func (s *Sender) Send(ctx context.Context, m *nudge.Outbound) (*nudge.SendResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := Record{ProviderID: "log_" + newID(), At: s.cfg.Clock.Now(), Outbound: clone(m)}
	s.mu.Lock()
	if len(s.ring) < s.cfg.Capacity {
		s.ring = append(s.ring, r)
	} else {
		s.ring[s.next] = r
		s.next = (s.next + 1) % s.cfg.Capacity
	}
	s.mu.Unlock()

	// Neither the recipient in full nor the subject or body are logged:
	// they are or may hold personal data (a subject often names the
	// contact), and Sent shows them.
	to := m.To
	if s.cfg.Channel == nudge.ChannelEmail || s.cfg.Channel == nudge.ChannelSMS {
		to = nudge.MaskAddress(s.cfg.Channel, to)
	}
	s.cfg.Logger.InfoContext(ctx, "logsink: message not sent",
		"channel", s.cfg.Channel,
		"message_id", m.MessageID,
		"provider_id", r.ProviderID,
		"to", to,
		"from", m.From,
		"subject_len", len(m.Subject),
		"text_len", len(m.Text),
		"html_len", len(m.HTML),
	)
	return &nudge.SendResult{ProviderID: r.ProviderID, Status: nudge.MessageSent}, nil
}

// Records returns the messages kept, oldest first.
func (s *Sender) Records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.ring))
	out = append(out, s.ring[s.next:]...)
	out = append(out, s.ring[:s.next]...)
	for i := range out {
		out[i].Outbound = clone(&out[i].Outbound)
	}
	return out
}

// Sent returns the messages kept, oldest first.
func (s *Sender) Sent() []nudge.Outbound {
	records := s.Records()
	out := make([]nudge.Outbound, len(records))
	for i, r := range records {
		out[i] = r.Outbound
	}
	return out
}

// clone copies m so that neither the caller nor a reader of Sent can change
// what was recorded.
func clone(m *nudge.Outbound) nudge.Outbound {
	c := *m
	c.Headers = maps.Clone(m.Headers)
	return c
}

func newID() string {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}
