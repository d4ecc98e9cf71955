package logsink_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/channel/logsink"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var now = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

func mustSender(t *testing.T, cfg logsink.Config) *logsink.Sender {
	t.Helper()
	s, err := logsink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	var logs bytes.Buffer
	s := mustSender(t, logsink.Config{
		Channel: nudge.ChannelEmail,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
		Clock:   fixedClock{now},
	})
	if s.Channel() != nudge.ChannelEmail {
		t.Errorf("Channel() = %q", s.Channel())
	}
	m := &nudge.Outbound{
		MessageID: "msg_1", Channel: nudge.ChannelEmail, To: "ada@example.com", From: "shop@example.com",
		Subject: "Your cart", HTML: "<p>secret body</p>", Text: "secret body",
		Headers: map[string]string{"List-Unsubscribe": "<https://x/u/1>"},
	}
	res, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != nudge.MessageSent || !strings.HasPrefix(res.ProviderID, "log_") {
		t.Errorf("result = %+v", res)
	}
	m.Headers["List-Unsubscribe"] = "changed" // the record is a copy
	want := []nudge.Outbound{{
		MessageID: "msg_1", Channel: nudge.ChannelEmail, To: "ada@example.com", From: "shop@example.com",
		Subject: "Your cart", HTML: "<p>secret body</p>", Text: "secret body",
		Headers: map[string]string{"List-Unsubscribe": "<https://x/u/1>"},
	}}
	if diff := cmp.Diff(want, s.Sent()); diff != "" {
		t.Errorf("Sent (-want +got):\n%s", diff)
	}
	if r := s.Records()[0]; r.ProviderID != res.ProviderID || !r.At.Equal(now) {
		t.Errorf("record = %+v", r)
	}
	line := logs.String()
	for _, want := range []string{"message_id=msg_1", "provider_id=" + res.ProviderID, "to=ad•••@example.com", "channel=email", "subject_len=9"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	for _, personal := range []string{"secret body", "ada@example.com", "Your cart"} {
		if strings.Contains(line, personal) {
			t.Errorf("log line %q holds %q", line, personal)
		}
	}
}

func TestRingKeepsNewest(t *testing.T) {
	s := mustSender(t, logsink.Config{Channel: nudge.ChannelSMS, Capacity: 3, Logger: slog.New(slog.DiscardHandler)})
	ids := map[string]bool{}
	for i := range 5 {
		res, err := s.Send(context.Background(), &nudge.Outbound{MessageID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if ids[res.ProviderID] {
			t.Errorf("provider ID %s repeated", res.ProviderID)
		}
		ids[res.ProviderID] = true
	}
	var got []string
	for _, m := range s.Sent() {
		got = append(got, m.MessageID)
	}
	if diff := cmp.Diff([]string{"2", "3", "4"}, got); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
}

func TestConcurrentSend(t *testing.T) {
	s := mustSender(t, logsink.Config{Channel: nudge.ChannelSMS, Capacity: 50, Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), &nudge.Outbound{MessageID: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
			_ = s.Sent()
		})
	}
	wg.Wait()
	if n := len(s.Sent()); n != 50 {
		t.Errorf("kept %d, want 50", n)
	}
}

func TestSendCancelled(t *testing.T) {
	s := mustSender(t, logsink.Config{Channel: nudge.ChannelSMS, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, &nudge.Outbound{}); err == nil {
		t.Error("Send with a cancelled context succeeded")
	}
	if n := len(s.Sent()); n != 0 {
		t.Errorf("kept %d, want 0", n)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []logsink.Config{{}, {Channel: "sms", Capacity: -1}} {
		if _, err := logsink.New(cfg); nudge.ErrorCode(err) != nudge.EINVALID {
			t.Errorf("New(%+v) err = %v, want EINVALID", cfg, err)
		}
	}
}
