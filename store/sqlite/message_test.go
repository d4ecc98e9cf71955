package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/sqlite"
)

// TestMessageLogPlans: each filter of the console's messages log, newest
// first, searches the index named and reads it in order, without a sort
// and without scanning the outbox.
func TestMessageLogPlans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nudge.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
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
