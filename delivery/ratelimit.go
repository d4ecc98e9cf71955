package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nudge/nudge"
)

// RateLimits caps how fast messages leave, in messages per second, at
// three levels. A message passes its sending address's limit, then its
// provider's, then the workspace's; zero or absent is no limit.
//
// A message that finds no free slot is not waited for: it is deferred
// (left queued, released from its claim, AvailableAt moved to its slot),
// so a slow sender never holds a worker goroutine, and other senders' messages in the same
// batch go at once.
type RateLimits struct {
	// Sender by sending address: a phone number, a messaging service SID,
	// an email address. For a US or Canadian number without an entry,
	// DefaultSenderRate applies when SenderDefaults is set.
	Sender map[string]float64
	// SenderDefaults applies DefaultSenderRate to sending numbers that
	// have no entry in Sender.
	SenderDefaults bool
	// Provider by channel (nudge.ChannelSMS, nudge.ChannelEmail): each
	// channel has one provider, so this is the provider's account limit.
	Provider map[string]float64
	// Workspace caps email and SMS together.
	Workspace float64
}

// US carrier throughput of a sending number, in messages per second.
const (
	RateLongCode  = 1   // a 10-digit long code (10DLC)
	RateTollFree  = 3   // a toll-free number
	RateShortCode = 100 // a short code
)

// DefaultSenderRate is the usual throughput of a North American sending
// number, by kind: a 5- or 6-digit short code, a toll-free number (+1 800,
// 833, 844, 855, 866, 877, 888), or a long code (any other +1 number). It
// is 0 (no default) for anything else: other countries, messaging
// services, email addresses.
func DefaultSenderRate(from string) float64 {
	digits := func(s string) bool {
		for _, r := range s {
			if r < '0' || r > '9' {
				return false
			}
		}
		return s != ""
	}
	switch {
	case (len(from) == 5 || len(from) == 6) && digits(from):
		return RateShortCode
	case len(from) == 12 && strings.HasPrefix(from, "+1") && digits(from[1:]):
		switch from[2:5] {
		case "800", "833", "844", "855", "866", "877", "888":
			return RateTollFree
		}
		return RateLongCode
	}
	return 0
}

// ParseRateLimits reads limits written as comma-separated KEY=RATE items
// (the serve flag --rate-limits and NUDGE_RATE_LIMITS):
//
//	from:+14155550100=1   a sending address
//	from:default          with no rate: DefaultSenderRate for numbers without an entry
//	sms=100, email=50     a channel's provider
//	workspace=150         everything
//
// RATE is messages per second, a positive number (0.5 is one every two
// seconds). An error names the item and what is wrong with it.
func ParseRateLimits(s string) (RateLimits, error) {
	var l RateLimits
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		bad := func(format string, args ...any) error {
			return nudge.Errorf(nudge.EINVALID, "rate limits: item %d %q: %s", i+1, item, fmt.Sprintf(format, args...))
		}
		if item == "from:default" {
			l.SenderDefaults = true
			continue
		}
		key, val, ok := strings.Cut(item, "=")
		if !ok {
			return RateLimits{}, bad("want KEY=RATE (from:ADDRESS=1, sms=100, email=50, workspace=150) or from:default")
		}
		rate, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || rate <= 0 || rate > 1e6 {
			return RateLimits{}, bad("the rate must be a positive number of messages per second, like 1 or 0.5")
		}
		switch key = strings.TrimSpace(key); {
		case strings.HasPrefix(key, "from:") && len(key) > len("from:"):
			if l.Sender == nil {
				l.Sender = map[string]float64{}
			}
			l.Sender[strings.TrimPrefix(key, "from:")] = rate
		case key == nudge.ChannelSMS || key == nudge.ChannelEmail:
			if l.Provider == nil {
				l.Provider = map[string]float64{}
			}
			l.Provider[key] = rate
		case key == "workspace":
			l.Workspace = rate
		default:
			return RateLimits{}, bad("unknown key %q: want from:ADDRESS, sms, email or workspace", key)
		}
	}
	return l, nil
}

// String writes l as ParseRateLimits reads it.
func (l RateLimits) String() string {
	var items []string
	for _, from := range slices.Sorted(maps.Keys(l.Sender)) {
		items = append(items, "from:"+from+"="+strconv.FormatFloat(l.Sender[from], 'g', -1, 64))
	}
	if l.SenderDefaults {
		items = append(items, "from:default")
	}
	for _, ch := range slices.Sorted(maps.Keys(l.Provider)) {
		items = append(items, ch+"="+strconv.FormatFloat(l.Provider[ch], 'g', -1, 64))
	}
	if l.Workspace > 0 {
		items = append(items, "workspace="+strconv.FormatFloat(l.Workspace, 'g', -1, 64))
	}
	return strings.Join(items, ",")
}

func (l RateLimits) empty() bool {
	return len(l.Sender) == 0 && !l.SenderDefaults && len(l.Provider) == 0 && l.Workspace == 0
}

// check validates l for New.
func (l RateLimits) check() error {
	bad := func(what string, r float64) error {
		if r < 0 || r != r {
			return nudge.Errorf(nudge.EINVALID, "delivery: rate limit of %s is %v: want a positive number of messages per second, or 0 for none", what, r)
		}
		return nil
	}
	for k, r := range l.Sender {
		if err := bad("sender "+k, r); err != nil {
			return err
		}
	}
	for k, r := range l.Provider {
		if err := bad("provider "+k, r); err != nil {
			return err
		}
	}
	return bad("the workspace", l.Workspace)
}

// limiter spaces the messages of each limit evenly (the generic cell rate
// algorithm: each limit keeps the time its next message may go, tat).
//
// A message takes its levels in order, sender first, reserving a slot at
// each: the first one not free now defers the message to that slot, and
// the reservation is kept (by message id) so that when the message comes
// back it goes straight on to the next level. Outer levels are reserved
// only by messages ready for them now, so one sending number's backlog
// never takes the provider's or the workspace's future slots from other
// numbers. A send never happens before its slot at any level, so over any
// window a limit's sends exceed rate × window by at most one.
//
// Reservations live in memory, unless the limiter shares slots kept in
// the store (Config.Slots, sharedlimit.go). In memory, after a restart a
// deferred message simply takes the levels again when it comes back; with
// several processes each applies the limits on its own (see the package
// doc).
type limiter struct {
	limits RateLimits
	slots  nudge.RateSlotStore // nil: the slots are in memory
	log    *slog.Logger

	mu       sync.Mutex
	tat      map[string]time.Time // by level key
	reserved map[string]reservation
	holds    map[string]nudge.RateHold // shared: taken for this pass's messages
	pruned   time.Time
}

type reservation struct {
	level int       // levels passed
	at    time.Time // the slot of the last level passed
}

func newLimiter(l RateLimits) *limiter {
	if l.empty() {
		return nil
	}
	return &limiter{limits: l, tat: map[string]time.Time{}, reserved: map[string]reservation{}}
}

type level struct {
	key      string
	interval time.Duration
}

// levels returns the limits that apply to a message of channel from from,
// innermost first.
func (l *limiter) levels(channel, from string) []level {
	var out []level
	add := func(key string, rate float64) {
		if rate > 0 {
			out = append(out, level{key, time.Duration(float64(time.Second) / rate)})
		}
	}
	rate, ok := l.limits.Sender[from]
	if !ok && l.limits.SenderDefaults {
		rate = DefaultSenderRate(from)
	}
	add("from:"+channel+":"+from, rate)
	add("provider:"+channel, l.limits.Provider[channel])
	add("workspace", l.limits.Workspace)
	return out
}

// admit reports whether message id may go now. If not, it returns the
// slot to defer it to, or late when that slot is after deadline (the
// message would be too old by then; nothing is reserved for it).
func (l *limiter) admit(ctx context.Context, id, channel, from string, now, deadline time.Time) (ok bool, at time.Time, late bool) {
	levels := l.levels(channel, from)
	if l.slots != nil {
		return l.admitShared(ctx, id, levels, now, deadline)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	start := 0
	if r, found := l.reserved[id]; found {
		if r.at.After(now) {
			return false, r.at, false // back early: it keeps its slot
		}
		delete(l.reserved, id)
		start = r.level
	}
	for i := start; i < len(levels); i++ {
		lv := levels[i]
		slot := now
		if t := l.tat[lv.key]; t.After(now) {
			slot = t
		}
		if slot.After(deadline) {
			return false, time.Time{}, true
		}
		l.tat[lv.key] = slot.Add(lv.interval)
		if slot.After(now) {
			l.reserved[id] = reservation{level: i + 1, at: slot}
			return false, slot, false
		}
	}
	return true, time.Time{}, false
}

// prune forgets, once a minute, reservations of messages that never came
// back (cancelled meanwhile) and limits idle for an hour.
func (l *limiter) prune(now time.Time) {
	if now.Sub(l.pruned) < time.Minute {
		return
	}
	l.pruned = now
	maps.DeleteFunc(l.reserved, func(_ string, r reservation) bool { return now.Sub(r.at) > time.Hour })
	maps.DeleteFunc(l.tat, func(_ string, t time.Time) bool { return now.Sub(t) > time.Hour })
}
