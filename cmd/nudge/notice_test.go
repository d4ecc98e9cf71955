package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// TestServePreviewCountsOptOutNotice: the server's template preview lints
// an SMS with the policy's opt-out notice, as the first marketing text
// goes: 150 characters fit one segment, and take two with the notice.
func TestServePreviewCountsOptOutNotice(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "full.sms.liquid"), []byte(strings.Repeat("word ", 30)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "nudge.db")
	s, err := openStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ContactPut(context.Background(), &nudge.Contact{ID: "ada", Phone: "+13125550100"}, nudgetest.Epoch); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m, key := startMain(t, db, func(m *Main) { m.Delivery.Templates = dir })
	cl := &client{t: t, base: "http://" + m.Addr(), key: key}
	var got struct {
		SMS struct {
			Segments int `json:"segments"`
		} `json:"sms"`
	}
	if code := cl.do("POST", "/v1/templates/full/preview", `{"contact_id": "ada", "channel": "sms"}`, &got); code != 200 || got.SMS.Segments != 2 {
		t.Errorf("preview = %d, %d segments; want 200, 2 (with the notice)", code, got.SMS.Segments)
	}
}
