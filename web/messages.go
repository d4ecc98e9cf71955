package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

// messageScan is how many messages one page of the log reads at most while
// looking for matches: a rare filter over a long outbox shows what it found
// so far and a link to search on, instead of reading the whole outbox.
const messageScan = 20000

// messageStatuses are the statuses the log's filter offers, in lifecycle order.
var messageStatuses = []string{
	nudge.MessageQueued, nudge.MessageSending, nudge.MessageSent, nudge.MessageDelivered,
	nudge.MessageUndelivered, nudge.MessageFailed, nudge.MessageCancelled, nudge.MessageOutcomeUnknown,
}

var messageChannels = []string{nudge.ChannelEmail, nudge.ChannelSMS, nudge.ChannelWebhook}

// messageFilter is the log's search form.
type messageFilter struct {
	Channel, Status, Journey, Step, Contact, From, To string
	from, to                                          time.Time
}

func (f *messageFilter) match(m *nudge.Message) bool {
	return (f.Channel == "" || m.Channel == f.Channel) &&
		(f.Journey == "" || m.JourneyID == f.Journey) &&
		(f.Step == "" || m.StepID == f.Step) &&
		(f.from.IsZero() || !m.CreatedAt.Before(f.from)) &&
		(f.to.IsZero() || m.CreatedAt.Before(f.to))
}

// messageRow is a message with its status history and the decisions that
// led to it.
type messageRow struct {
	Message *nudge.Message
	History []*nudge.MessageStatus
	Why     []*nudge.Decision
}

// Sentence is the last decision's sentence: why the message was sent.
func (m *messageRow) Sentence() string {
	if len(m.Why) == 0 {
		return ""
	}
	return m.Why[len(m.Why)-1].Message
}

type messagesPage struct {
	Filter    messageFilter
	Statuses  []string
	Channels  []string
	Journeys  []*nudge.Journey
	Rows      []*messageRow
	Problem   string
	Next      string // the next page's link, "" on the last
	First     string // the first page's link, "" on it
	Scanned   int
	Exhausted bool // the scan stopped at messageScan before the page filled
}

func (s *Server) handleMessages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p := &messagesPage{Statuses: messageStatuses, Channels: messageChannels}
	f := &p.Filter
	f.Channel, f.Status, f.Journey = q.Get("channel"), q.Get("status"), q.Get("journey")
	f.Step, f.Contact = strings.TrimSpace(q.Get("step")), strings.TrimSpace(q.Get("contact"))
	f.From, f.To = q.Get("from"), q.Get("to")
	var err error
	if p.Journeys, err = s.store.JourneyList(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	switch {
	case f.Channel != "" && !slices.Contains(messageChannels, f.Channel):
		p.Problem = "Channel “" + f.Channel + "” is not one of email, sms, webhook."
	case f.Status != "" && !slices.Contains(messageStatuses, f.Status):
		p.Problem = "Status “" + f.Status + "” is not a message status."
	}
	if p.Problem == "" {
		if f.from, f.to, err = dayRange(q); err != nil {
			p.Problem = nudge.ErrorMessage(err)
		}
	}
	if p.Problem != "" {
		s.render(w, r, http.StatusBadRequest, "messages.html", "Messages", p)
		return
	}
	after := q.Get("after")
	if after != "" {
		p.First = withQuery(r, "after", "")
	}
	lp := &nudge.MessageListParams{ContactID: f.Contact, Status: f.Status, AfterID: after, Limit: 1000}
	var last string
scan:
	for p.Scanned < messageScan {
		ms, err := s.store.MessageList(ctx, lp)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, m := range ms {
			p.Scanned++
			last = m.ID
			if f.match(m) {
				p.Rows = append(p.Rows, &messageRow{Message: m})
				if len(p.Rows) == pageSize {
					p.Next = withQuery(r, "after", last)
					break scan
				}
			}
		}
		if len(ms) < lp.Limit {
			break
		}
		lp.AfterID = ms[len(ms)-1].ID
	}
	if p.Next == "" && p.Scanned >= messageScan {
		p.Exhausted = true
		p.Next = withQuery(r, "after", last)
	}
	for _, row := range p.Rows {
		if err := s.explainMessage(ctx, row); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, status, "messages.html", "Messages", p)
}

// explainMessage reads a message's status history and the decisions of
// its enrollment at its step that led to it: any deferrals, then the send.
func (s *Server) explainMessage(ctx context.Context, row *messageRow) error {
	m := row.Message
	var err error
	if row.History, err = s.store.MessageHistory(ctx, m.ID); err != nil {
		return err
	}
	if m.EnrollmentID == "" {
		return nil
	}
	dp := &nudge.DecisionListParams{EnrollmentID: m.EnrollmentID, Limit: 1000}
	var at []*nudge.Decision // decisions at the step since its last send
	for {
		ds, err := s.store.DecisionList(ctx, dp)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.StepID != m.StepID {
				continue
			}
			at = append(at, d)
			if id, _ := d.Details["message_id"].(string); id != "" {
				if id == m.ID {
					row.Why = at
					return nil
				}
				at = nil // an earlier visit's message
			}
		}
		if len(ds) < dp.Limit {
			return nil
		}
		dp.AfterID = ds[len(ds)-1].ID
	}
}

type messagePage struct {
	messageRow
}

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	m, err := s.store.MessageGet(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := &messagePage{messageRow{Message: m}}
	if err := s.explainMessage(r.Context(), &p.messageRow); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "message.html", "Message "+m.ID, p)
}
