package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/api"
	"github.com/nudge/nudge/policy"
)

const explainUsage = `usage:
  nudge explain CONTACT [--journey J] [--since T] [--tz ZONE] [--json]
      the contact's decisions and messages in time order, by enrollment
  nudge explain --message ID [--tz ZONE] [--json]
      one message: every decision of its step, every check it passed or failed

--since takes an RFC 3339 time, a date (2026-03-02, UTC) or an age (48h, 7d).`

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		journeyID, since, tz, messageID string
		asJSON                          bool
	)
	s, _, rest, err := openInterspersed(ctx, "explain", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&journeyID, "journey", "", "only this journey")
		fs.StringVar(&since, "since", "", "only from this time: RFC 3339, a date, or an age such as 7d")
		fs.StringVar(&tz, "tz", "UTC", "show times in this IANA time zone")
		fs.StringVar(&messageID, "message", "", "explain one message by its id")
		fs.BoolVar(&asJSON, "json", false, "print JSON, as GET /v1/contacts/{id}/timeline answers")
	})
	if err != nil {
		return err
	}
	defer s.Close()
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return fmt.Errorf("--tz %q: not an IANA time zone such as America/Chicago", tz)
	}
	now := nudge.SystemClock{}.Now()
	if messageID != "" {
		if len(rest) != 0 || journeyID != "" || since != "" {
			return fmt.Errorf("explain --message takes no contact, --journey or --since")
		}
		return explainMessage(ctx, s, messageID, loc, asJSON, stdout)
	}
	if len(rest) != 1 {
		fmt.Fprintln(stderr, explainUsage)
		return errUsage
	}
	p := &api.TimelineParams{ContactID: rest[0], JourneyID: journeyID, Limit: 10000}
	if since != "" {
		if p.Since, err = parseSince(since, now); err != nil {
			return err
		}
	}
	t, err := api.BuildTimeline(ctx, s, p)
	if err != nil {
		return err
	}
	if len(t.Entries) == 0 {
		if _, err := s.ContactGet(ctx, p.ContactID); err != nil {
			return fmt.Errorf("contact %s: %w", p.ContactID, err)
		}
	}
	if asJSON {
		return writeIndented(stdout, t)
	}
	return printTimeline(stdout, t, loc)
}

// parseSince reads an RFC 3339 time, a date, or an age before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := policy.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: write an RFC 3339 time (2026-03-02T09:00:00Z), a date (2026-03-02) or an age (48h, 7d)", s)
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func formatAt(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02 15:04 MST")
}

// printTimeline writes one line per entry, grouped by enrollment (entries
// of no enrollment, such as not_entered, by journey), groups in the order
// they began.
func printTimeline(w io.Writer, t *api.Timeline, loc *time.Location) error {
	if len(t.Entries) == 0 {
		_, err := fmt.Fprintf(w, "%s: no decisions or messages\n", t.ContactID)
		return err
	}
	type group struct {
		title   string
		entries []*api.TimelineEntry
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, e := range t.Entries {
		key, title := "enrollment "+e.EnrollmentID, fmt.Sprintf("%s v%d · enrollment %s", e.Journey, e.Version, e.EnrollmentID)
		if e.EnrollmentID == "" {
			key, title = "journey "+e.Journey, e.Journey+" · not enrolled"
		}
		g := byKey[key]
		if g == nil {
			g = &group{title: title}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.entries = append(g.entries, e)
	}
	fmt.Fprintf(w, "%s: %d decisions and messages, %s to %s\n", t.ContactID, len(t.Entries),
		formatAt(t.Entries[0].At, loc), formatAt(t.Entries[len(t.Entries)-1].At, loc))
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s\n", g.title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range g.entries {
			fmt.Fprintf(tw, "  %s\t%s v%d\t%s\t%s\n", formatAt(e.At, loc), e.Journey, e.Version, cmpOr(e.Step, "-"), entryText(e))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if t.Truncated {
		fmt.Fprintf(w, "\n… more entries from %s: run again with --since %s\n", formatAt(t.NextSince, loc), t.NextSince.Format(time.RFC3339))
	}
	return nil
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

// entryText is an entry's sentence with its reason code, or for a message
// its id (for explain --message).
func entryText(e *api.TimelineEntry) string {
	s := strings.TrimSuffix(e.Sentence, ".")
	if e.Kind == api.KindMessage {
		return fmt.Sprintf("%s  [message %s]", s, e.ID)
	}
	if e.Reason != "" {
		return fmt.Sprintf("%s  [%s: %s]", s, e.Outcome, e.Reason)
	}
	return s
}

// findMessage finds a message by id. The outbox pages by id, so a page
// after the id less its last character holds it, among at most a few ids
// that sort between.
func findMessage(ctx context.Context, s nudge.Store, id string) (*nudge.Message, error) {
	if id == "" {
		return nil, nudge.ErrNotFound
	}
	p := &nudge.MessageListParams{AfterID: id[:len(id)-1], Limit: 100}
	for range 10 {
		ms, err := s.MessageList(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.ID == id {
				return m, nil
			}
		}
		if len(ms) < p.Limit || ms[len(ms)-1].ID > id {
			break
		}
		p.AfterID = ms[len(ms)-1].ID
	}
	return nil, nudge.Errorf(nudge.ENOTFOUND, "message %s not found", id)
}

// messageExplanation is what explain --message --json prints.
type messageExplanation struct {
	Message   *api.TimelineEntry `json:"message"`
	Decisions []*checkedDecision `json:"decisions"`
}

type checkedDecision struct {
	*api.TimelineEntry
	Checks []check `json:"checks,omitempty"`
}

// check is one rule of the policy and what became of it.
type check struct {
	Rule   string `json:"rule"`
	Result string `json:"result"` // passed, failed, not_reached
}

// rules are the policy's rules in the order they are checked, each with
// the reasons by which it stops a send.
var rules = []struct {
	name    string
	smsOnly bool
	stops   func(reason string) bool
}{
	{"suppression", false, func(r string) bool { return strings.HasPrefix(r, "suppressed_") }},
	{"consent", false, func(r string) bool {
		return slices.Contains([]string{policy.ReasonNoConsentSMS, policy.ReasonNoConsentEmail, policy.ReasonOptedOut, policy.ReasonConsentUnavailable}, r)
	}},
	{"SMS-allowed points", true, func(r string) bool {
		return slices.Contains([]string{policy.ReasonSMSNotAllowedPurpose, policy.ReasonAwarenessStage, policy.ReasonNotEngaged}, r)
	}},
	{"quiet hours and expiry", false, func(r string) bool {
		return slices.Contains([]string{policy.ReasonQuietHours, policy.ReasonQuietDay, policy.ReasonExpired}, r)
	}},
	{"frequency caps", false, policy.IsCapReason},
	{"priority", false, func(r string) bool { return r == policy.ReasonPriorityLost }},
}

// checksOf derives, from a decision's reason, which rules it passed and
// which stopped it. A send decided by the policy passed every rule; a
// decision the policy did not make (no address, holdout) has no checks.
func checksOf(e *api.TimelineEntry) []check {
	stopped := -1
	for i, r := range rules {
		if r.stops(e.Reason) {
			stopped = i
		}
	}
	_, evaluated := e.Details["zone"] // the policy's details always say the zone
	if stopped < 0 && !(e.Outcome == nudge.OutcomeSent && (evaluated || e.Reason == policy.ReasonAllowed || e.PolicyVersion > 0)) {
		return nil
	}
	var cs []check
	for i, r := range rules {
		if r.smsOnly && e.Channel != nudge.ChannelSMS {
			continue
		}
		res := "passed"
		switch {
		case stopped >= 0 && i == stopped:
			res = "failed"
		case stopped >= 0 && i > stopped:
			res = "not_reached"
		}
		cs = append(cs, check{Rule: r.name, Result: res})
	}
	return cs
}

func explainMessage(ctx context.Context, s nudge.Store, id string, loc *time.Location, asJSON bool, w io.Writer) error {
	m, err := findMessage(ctx, s, id)
	if err != nil {
		return err
	}
	x := &messageExplanation{Message: api.MessageEntry(m), Decisions: []*checkedDecision{}}
	p := &nudge.DecisionListParams{EnrollmentID: m.EnrollmentID, Limit: 10000}
	for {
		ds, err := s.DecisionList(ctx, p)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.StepID != m.StepID {
				continue
			}
			e := api.DecisionEntry(d)
			x.Decisions = append(x.Decisions, &checkedDecision{TimelineEntry: e, Checks: checksOf(e)})
		}
		if len(ds) < p.Limit {
			break
		}
		p.AfterID = ds[len(ds)-1].ID
	}
	if asJSON {
		return writeIndented(w, x)
	}
	fmt.Fprintf(w, "message %s: %s\n", m.ID, strings.TrimSuffix(x.Message.Sentence, "."))
	fmt.Fprintf(w, "  contact %s, %s v%d, step %s, enrollment %s\n", m.ContactID, m.JourneyID, m.Version, m.StepID, m.EnrollmentID)
	fmt.Fprintf(w, "  created %s, status %s since %s", formatAt(m.CreatedAt, loc), m.Status, formatAt(m.UpdatedAt, loc))
	if m.Purpose != "" {
		fmt.Fprintf(w, ", purpose %s", m.Purpose)
	}
	fmt.Fprintln(w)
	if len(x.Decisions) == 0 {
		fmt.Fprintf(w, "\nno decisions recorded for step %s\n", m.StepID)
		return nil
	}
	fmt.Fprintf(w, "\ndecisions of step %s:\n", m.StepID)
	for _, d := range x.Decisions {
		fmt.Fprintf(w, "\n%s  %s\n", formatAt(d.At, loc), entryText(d.TimelineEntry))
		if len(d.Checks) > 0 {
			var parts []string
			for _, c := range d.Checks {
				res := c.Result
				switch res {
				case "failed":
					res = "FAILED"
				case "not_reached":
					res = "not reached"
				}
				parts = append(parts, c.Rule+" "+res)
			}
			fmt.Fprintf(w, "  checks: %s\n", strings.Join(parts, " · "))
		}
		if d.PolicyVersion > 0 {
			fmt.Fprintf(w, "  policy: v%d\n", d.PolicyVersion)
		}
		for _, line := range flatten("", d.Details) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	return nil
}

// flatten writes details as "key: value" lines, sorted, nested objects as
// "consent.status: opted_in", lists of objects one item a line.
func flatten(prefix string, v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			out = append(out, flatten(name, x[k])...)
		}
	case []any:
		if len(x) > 0 {
			if _, ok := x[0].(map[string]any); ok {
				for i, item := range x {
					out = append(out, flatten(fmt.Sprintf("%s[%d]", prefix, i), item)...)
				}
				return out
			}
		}
		parts := make([]string, len(x))
		for i, item := range x {
			parts[i] = fmt.Sprint(item)
		}
		out = append(out, prefix+": "+strings.Join(parts, ", "))
	case time.Time:
		out = append(out, prefix+": "+x.UTC().Format(time.RFC3339))
	case nil:
		out = append(out, prefix+": -")
	default:
		out = append(out, fmt.Sprintf("%s: %v", prefix, x))
	}
	return out
}
