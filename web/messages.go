package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nudge/nudge"
)

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
	Filter   messageFilter
	Statuses []string
	Channels []string
	Journeys []*nudge.Journey
	Rows     []*messageRow
	Problem  string
	Next     string // the next (older) page's link, "" on the last
	First    string // the first (newest) page's link, "" on it
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
	// The store filters and pages, newest first, through its indexes: one
	// read of a page and one more row to know whether another follows.
	lp := &nudge.MessageListParams{Newest: true, ContactID: f.Contact, Status: f.Status, Channel: f.Channel,
		JourneyID: f.Journey, StepID: f.Step, From: f.from, To: f.to, BeforeID: q.Get("before"), Limit: pageSize + 1}
	if lp.BeforeID != "" {
		p.First = withQuery(r, "before", "")
	}
	ms, err := s.store.MessageList(ctx, lp)
	if nudge.ErrorCode(err) == nudge.EINVALID {
		p.Problem = nudge.ErrorMessage(err)
		s.render(w, r, http.StatusBadRequest, "messages.html", "Messages", p)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(ms) > pageSize {
		ms = ms[:pageSize]
		p.Next = withQuery(r, "before", ms[pageSize-1].ID)
	}
	for _, m := range ms {
		p.Rows = append(p.Rows, &messageRow{Message: m})
	}
	for _, row := range p.Rows {
		if err := s.explainMessage(ctx, row); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "messages.html", "Messages", p)
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
