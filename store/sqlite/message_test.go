package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/sqlite"
	"github.com/nudge/nudge/store/storetest"
)

// TestMessageLogPlans: each filter of the console's messages log, newest
// first, searches the index named and reads it in order, without a sort
// and without scanning the outbox.
func TestMessageLogPlans(t *testing.T) {
	_, path := migrated(t)
	raw := rawDB(t, path)
	from, to := nudgetest.Epoch, nudgetest.Epoch.Add(24*time.Hour)
	for _, tt := range []struct {
		name  string
		p     nudge.MessageListParams
		index string
	}{
		{"all", nudge.MessageListParams{}, "messages_created"},
		{"a time range", nudge.MessageListParams{From: from, To: to}, "messages_created"},
		{"a channel", nudge.MessageListParams{Channel: nudge.ChannelSMS}, "messages_channel_created"},
		{"a channel in a time range", nudge.MessageListParams{Channel: nudge.ChannelSMS, From: from, To: to}, "messages_channel_created"},
		{"a journey", nudge.MessageListParams{JourneyID: "j"}, "messages_journey_created"},
		{"a journey's step", nudge.MessageListParams{JourneyID: "j", StepID: "s"}, "messages_journey_created"},
		{"a journey's step in a time range", nudge.MessageListParams{JourneyID: "j", StepID: "s", From: from}, "messages_journey_created"},
		{"a status", nudge.MessageListParams{Status: nudge.MessageFailed}, "messages_status_created"},
		{"a status in a time range", nudge.MessageListParams{Status: nudge.MessageFailed, To: to}, "messages_status_created"},
	} {
		for _, page := range []string{"", "m1"} {
			p := tt.p
			p.Newest, p.BeforeID, p.Limit = true, page, 51
			q, args := sqlite.MessageListQuery(&p, 5)
			plan := explain(t, raw, q, args...)
			if strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan+" ", "USING INDEX "+tt.index+" ") {
				t.Errorf("%s (cursor %q): plan %s; want a search of %s without a sort", tt.name, page, plan, tt.index)
			}
		}
	}
}

// BenchmarkMessageLog reads pages of the messages log over an outbox of
// 1,000,000 messages (storetest.BenchMessageLog), written with one INSERT
// … SELECT. Run: go test ./store/sqlite -run '^$' -bench MessageLog -benchtime 200x
func BenchmarkMessageLog(b *testing.B) {
	const n = 1_000_000
	db, path := migrated(b)
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	if _, err := raw.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO messages (id, enrollment_id, contact_id, journey_id, version, step_id, channel, status,
			idempotency_key, available_at, created_at, updated_at)
		SELECT printf('m%09d', i), 'e' || i, 'c' || (i % 50000), 'j' || (i % 20), 1, 's' || (i % 7),
			CASE WHEN i % 5 = 0 THEN 'sms' ELSE 'email' END, CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END,
			'k' || i, ? + i * 1000000, ? + i * 1000000, ? + i * 1000000 FROM n`,
		n-1, storetest.MessageLogEpoch.UnixMicro(), storetest.MessageLogEpoch.UnixMicro(), storetest.MessageLogEpoch.UnixMicro()); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	storetest.BenchMessageLog(b, db, n)
}

// migrated opens a migrated store in a temporary file, closed at cleanup.
func migrated(tb testing.TB) (*sqlite.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db, path
}

// TestMessagesUpdatePlan: MessageUpdate's multi-row UPDATE finds each
// message by its primary key, not by a scan of the outbox.
func TestMessagesUpdatePlan(t *testing.T) {
	_, path := migrated(t)
	raw := rawDB(t, path)
	args := make([]any, 0, 16)
	for _, id := range []string{"m1", "m2"} {
		args = append(args, id, "sending", "", 1, "", 0, false, 0)
	}
	plan := explain(t, raw, sqlite.MessagesUpdateQuery(2), args...)
	if strings.Contains(plan, "SCAN messages") || !strings.Contains(plan, "SEARCH messages USING INDEX sqlite_autoindex_messages_1") {
		t.Errorf("plan %s; want a search of messages by id", plan)
	}
}
