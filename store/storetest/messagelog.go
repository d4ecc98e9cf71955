package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// testMessageLog checks the messages log's reads: newest first by creation
// time with a cursor, and the filters by channel, journey, step, status and
// time, alone and together.
func testMessageLog(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	mustPublish(t, s, now, "k", "id: k\n")
	type made struct {
		id, channel, journey, step, status string
		at                                 time.Time
	}
	var all []made // in creation order
	add := func(at time.Time, is ...int) {
		c := &nudge.EngineCommit{}
		for _, i := range is {
			m := made{id: id("m", i), channel: nudge.ChannelEmail, journey: "j", step: id("s", i%3), status: nudge.MessageQueued, at: at}
			if i%2 == 1 {
				m.channel = nudge.ChannelSMS
			}
			if i >= 6 {
				m.journey = "k"
			}
			if i%4 == 0 {
				m.status = nudge.MessageSent
			}
			e := waiting(id("e", i), m.journey, []string{"c1", "c2"}[i%2], now)
			e.Key = m.id // one live enrollment per key
			msg := message(m.id, e, m.step)
			msg.Channel, msg.Status = m.channel, m.status
			c.Enrollments = append(c.Enrollments, e)
			c.Messages = append(c.Messages, msg)
			all = append(all, m)
		}
		mustCommit(t, s, at, c)
	}
	for i := range 12 {
		add(now.Add(time.Duration(i)*time.Minute), i)
	}
	add(now.Add(12*time.Minute), 12, 13) // two at the same time: the id breaks the tie
	newest := func(keep func(m made) bool) []string {
		out := []string{}
		for _, m := range slices.Backward(all) {
			if keep(m) {
				out = append(out, m.id)
			}
		}
		return out
	}
	at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }
	tests := []struct {
		name string
		p    *nudge.MessageListParams
		want []string
	}{
		{"newest first", &nudge.MessageListParams{Newest: true}, newest(func(made) bool { return true })},
		{"by channel", &nudge.MessageListParams{Newest: true, Channel: nudge.ChannelSMS},
			newest(func(m made) bool { return m.channel == nudge.ChannelSMS })},
		{"by journey", &nudge.MessageListParams{Newest: true, JourneyID: "k"},
			newest(func(m made) bool { return m.journey == "k" })},
		{"by journey and step", &nudge.MessageListParams{Newest: true, JourneyID: "k", StepID: "s0000"},
			newest(func(m made) bool { return m.journey == "k" && m.step == "s0000" })},
		{"by step alone", &nudge.MessageListParams{Newest: true, StepID: "s0001"},
			newest(func(m made) bool { return m.step == "s0001" })},
		{"by status", &nudge.MessageListParams{Newest: true, Status: nudge.MessageSent},
			newest(func(m made) bool { return m.status == nudge.MessageSent })},
		{"from, to", &nudge.MessageListParams{Newest: true, From: at(3), To: at(6)}, []string{"m0005", "m0004", "m0003"}},
		{"from only", &nudge.MessageListParams{Newest: true, From: at(11)}, []string{"m0013", "m0012", "m0011"}},
		{"to only", &nudge.MessageListParams{Newest: true, To: at(2)}, []string{"m0001", "m0000"}},
		{"everything at once", &nudge.MessageListParams{Newest: true, Channel: nudge.ChannelEmail, JourneyID: "k",
			Status: nudge.MessageQueued, From: at(6)}, []string{"m0010", "m0006"}},
		{"a contact, newest first", &nudge.MessageListParams{Newest: true, ContactID: "c2", To: at(6)}, []string{"m0005", "m0003", "m0001"}},
		{"a filter in id order", &nudge.MessageListParams{Channel: nudge.ChannelSMS, JourneyID: "j", AfterID: "m0001"},
			[]string{"m0003", "m0005"}},
		{"a page", &nudge.MessageListParams{Newest: true, Limit: 2}, []string{"m0013", "m0012"}},
		{"the page before a message", &nudge.MessageListParams{Newest: true, BeforeID: "m0013", Limit: 2}, []string{"m0012", "m0011"}},
		{"a filtered page", &nudge.MessageListParams{Newest: true, Channel: nudge.ChannelSMS, BeforeID: "m0009", Limit: 2},
			[]string{"m0007", "m0005"}},
		{"a page of a range, the cursor inside it", &nudge.MessageListParams{Newest: true, From: at(1), To: at(6), BeforeID: "m0004"},
			[]string{"m0003", "m0002", "m0001"}},
		{"a page of a range, the cursor after it", &nudge.MessageListParams{Newest: true, To: at(4), BeforeID: "m0009", Limit: 2},
			[]string{"m0003", "m0002"}},
		{"nothing matches", &nudge.MessageListParams{Newest: true, JourneyID: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustMessages(t, s, tt.p)
			if d := diff(tt.want, msgIDs(got)); d != "" {
				t.Errorf("MessageList(%+v) (-want +got):\n%s", *tt.p, d)
			}
		})
	}
	t.Run("paging one at a time reads every message once, ties included", func(t *testing.T) {
		var got []string
		p := &nudge.MessageListParams{Newest: true, Limit: 1}
		for range 20 {
			ms := mustMessages(t, s, p)
			if len(ms) == 0 {
				break
			}
			got = append(got, ms[0].ID)
			p.BeforeID = ms[0].ID
		}
		if d := diff(newest(func(made) bool { return true }), got); d != "" {
			t.Errorf("paged (-want +got):\n%s", d)
		}
	})
	t.Run("a message comes back whole, in UTC", func(t *testing.T) {
		got := mustMessages(t, s, &nudge.MessageListParams{Newest: true, Limit: 1})
		if len(got) != 1 || !got[0].CreatedAt.Equal(at(12)) || got[0].Channel != nudge.ChannelSMS || got[0].StepID != "s0001" {
			t.Fatalf("newest message %+v; want m0013, sms, step s0001, created at %v", got, at(12))
		}
		wantUTC(t, "message", got[0].CreatedAt, got[0].UpdatedAt, got[0].AvailableAt)
	})
	for _, tt := range []struct {
		name, field string
		p           *nudge.MessageListParams
	}{
		{"after_id newest first", "after_id", &nudge.MessageListParams{Newest: true, AfterID: "m0001"}},
		{"before_id in id order", "before_id", &nudge.MessageListParams{BeforeID: "m0001"}},
		{"to before from", "to", &nudge.MessageListParams{Newest: true, From: at(5), To: at(5)}},
		{"an unknown cursor", "before_id", &nudge.MessageListParams{Newest: true, BeforeID: "m9999"}},
	} {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			_, err := s.MessageList(ctx, tt.p)
			wantCode(t, "MessageList", err, nudge.EINVALID)
			if e := (*nudge.Error)(nil); !errors.As(err, &e) || e.Field != tt.field {
				t.Errorf("error %v does not name field %q", err, tt.field)
			}
		})
	}
}
