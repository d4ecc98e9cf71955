package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// MessageLogFill describes the outbox that BenchMessageLog reads, for a
// store's benchmark to write with its own SQL (fast bulk inserts): message
// i (from 0) has id fmt.Sprintf("m%09d", i), contact "c"+i%50000, journey
// "j"+i%20, step "s"+i%7, channel sms when i%5 == 0 (else email), status
// failed when i%50 == 0 (else sent), and was created at
// MessageLogEpoch + i seconds.
var MessageLogEpoch = nudgetest.Epoch

// BenchMessageLog measures one page of the console's messages log (51
// messages, newest first) over an outbox of n messages filled as
// MessageLogFill says, by each filter alone and with a cursor in the
// middle of the outbox.
func BenchMessageLog(b *testing.B, s nudge.Store, n int) {
	mid := MessageLogEpoch.Add(time.Duration(n/2) * time.Second)
	end := MessageLogEpoch.Add(time.Duration(n) * time.Second)
	cursor := messageLogID(n / 2)
	cases := []struct {
		name string
		p    nudge.MessageListParams
	}{
		{"all", nudge.MessageListParams{}},
		{"channel", nudge.MessageListParams{Channel: nudge.ChannelSMS}},
		{"journey", nudge.MessageListParams{JourneyID: "j7"}},
		{"journey+step", nudge.MessageListParams{JourneyID: "j7", StepID: "s3"}},
		{"status", nudge.MessageListParams{Status: nudge.MessageFailed}},
		{"day", nudge.MessageListParams{From: mid.Add(-12 * time.Hour), To: mid.Add(12 * time.Hour)}},
		{"channel+status+day", nudge.MessageListParams{Channel: nudge.ChannelSMS, Status: nudge.MessageFailed, From: mid.Add(-24 * time.Hour), To: end}},
		{"contact", nudge.MessageListParams{ContactID: "c123"}},
	}
	for _, tt := range cases {
		for _, page := range []string{"first", "middle"} {
			b.Run(tt.name+"/"+page, func(b *testing.B) {
				p := tt.p
				p.Newest, p.Limit = true, 51
				if page == "middle" {
					p.BeforeID = cursor
				}
				for b.Loop() {
					ms, err := s.MessageList(ctx, &p)
					if err != nil {
						b.Fatal(err)
					}
					if len(ms) == 0 {
						b.Fatalf("%s: no messages", tt.name)
					}
				}
			})
		}
	}
}

func messageLogID(i int) string { return fmt.Sprintf("m%09d", i) }
