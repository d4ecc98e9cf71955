package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/ingest"
)

// Event is one call of a timeline, parsed, with the line it came from.
type Event struct {
	Line int
	Item nudge.IngestItem
}

// At is when the event happened (its timestamp).
func (e *Event) At() time.Time { return e.Item.Event.Timestamp }

// maxTimelineErrors is how many bad lines ReadTimeline reports before it
// stops looking.
const maxTimelineErrors = 20

// ReadTimeline reads a timeline: one Segment call per line (JSON Lines),
// identify, track, page or screen, each with a "timestamp". Blank lines and
// lines starting with # or // are skipped. A call without a messageId gets
// "sim-LINE", so that the same file gives the same events. The events come
// back sorted by timestamp (file order among equal ones). Every bad line is
// reported, as name:line: what is wrong.
func ReadTimeline(name string, r io.Reader, contacts *ingest.ContactNormalizer) ([]*Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), ingest.MaxCallBytes+1)
	var (
		events []*Event
		errs   []string
		line   int
	)
	p := &ingest.Parser{Contacts: contacts, NewID: func() string { return fmt.Sprintf("sim-%d", line) }}
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' || bytes.HasPrefix(b, []byte("//")) {
			continue
		}
		if len(errs) >= maxTimelineErrors {
			break
		}
		var head struct {
			Type      string     `json:"type"`
			Timestamp *time.Time `json:"timestamp"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			fail("not a JSON object with a type and a timestamp: %v", err)
			continue
		}
		switch head.Type {
		case nudge.EventIdentify, nudge.EventTrack, "page", "screen":
		case "":
			fail(`"type" is required: identify, track, page or screen`)
			continue
		default:
			fail(`"type" %q is not one of identify, track, page, screen`, head.Type)
			continue
		}
		if head.Timestamp == nil {
			fail(`"timestamp" is required in a timeline (RFC 3339, e.g. "2026-03-02T09:00:00Z")`)
			continue
		}
		item, err := p.ParseCall(head.Type, b, *head.Timestamp)
		if err != nil {
			fail("%s", nudge.ErrorMessage(err))
			continue
		}
		item.Event.ReceivedAt = item.Event.Timestamp
		events = append(events, &Event{Line: line, Item: item})
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line+1, ingest.MaxCallBytes)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d bad lines in the timeline:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	slices.SortStableFunc(events, func(a, b *Event) int { return a.At().Compare(b.At()) })
	return events, nil
}
