package storetest

import (
	"testing"

	"github.com/nudge/nudge"
)

func openLinks(t *testing.T, open func(t *testing.T) nudge.Store) interface {
	nudge.Store
	nudge.LinkStore
} {
	t.Helper()
	s := open(t)
	ls, ok := s.(interface {
		nudge.Store
		nudge.LinkStore
	})
	if !ok {
		t.Fatalf("%T does not implement nudge.LinkStore", s)
	}
	return ls
}

func testLink(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openLinks(t, open)
	if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "c1", Email: "Ann@Example.com"}, now); err != nil {
		t.Fatalf("ContactPut: %v", err)
	}
	click := &nudge.Link{Code: "AAAAAAAAAAA", URL: "https://x.io/a?b=1", MessageID: "m1", ContactID: "c1",
		JourneyID: "j1", StepID: "s1", Channel: nudge.ChannelSMS, CreatedAt: now}
	unsub := &nudge.Link{Code: "BBBBBBBBBBBBBBBBBBBBBBBBBB", MessageID: "m2", ContactID: "c1",
		JourneyID: "j1", StepID: "s2", Channel: nudge.LinkUnsubscribe, Address: "ann@example.com ", CreatedAt: now}
	stale := &nudge.Link{Code: "CCCCCCCCCCCCCCCCCCCCCCCCCC", MessageID: "m3", ContactID: "c1",
		Channel: nudge.LinkUnsubscribe, Address: "old@example.com", CreatedAt: now}
	gone := &nudge.Link{Code: "DDDDDDDDDDDDDDDDDDDDDDDDDD", MessageID: "m4", ContactID: "nobody",
		Channel: nudge.LinkUnsubscribe, Address: "x@example.com", CreatedAt: now}
	if err := s.LinkCreate(ctx, []*nudge.Link{click, unsub, stale, gone}); err != nil {
		t.Fatalf("LinkCreate: %v", err)
	}
	if err := s.LinkCreate(ctx, nil); err != nil {
		t.Fatalf("LinkCreate of nothing: %v", err)
	}

	t.Run("Get", func(t *testing.T) {
		got, err := s.LinkGet(ctx, click.Code)
		if err != nil {
			t.Fatalf("LinkGet: %v", err)
		}
		if d := diff(click, got); d != "" {
			t.Errorf("LinkGet (-want +got):\n%s", d)
		}
		wantUTC(t, "LinkGet", got.CreatedAt)
	})
	t.Run("UnsubscribeBoundToAddress", func(t *testing.T) {
		for _, tt := range []struct {
			l    *nudge.Link
			want bool
		}{{unsub, true}, {stale, false}, {gone, false}} {
			got, err := s.LinkGet(ctx, tt.l.Code)
			if err != nil {
				t.Fatalf("LinkGet %s: %v", tt.l.Code, err)
			}
			if got.Address != "" {
				t.Errorf("LinkGet %s: Address %q, want it never read back", tt.l.Code, got.Address)
			}
			if got.AddressCurrent != tt.want || got.ContactID != tt.l.ContactID || got.Channel != nudge.LinkUnsubscribe {
				t.Errorf("LinkGet %s: AddressCurrent %v contact %q channel %q, want %v %q %q",
					tt.l.Code, got.AddressCurrent, got.ContactID, got.Channel, tt.want, tt.l.ContactID, nudge.LinkUnsubscribe)
			}
		}
		// The contact changes address: the old token no longer matches.
		if _, _, err := s.ContactPut(ctx, &nudge.Contact{ID: "c1", Email: "ann@new.example"}, now); err != nil {
			t.Fatalf("ContactPut: %v", err)
		}
		got, err := s.LinkGet(ctx, unsub.Code)
		if err != nil {
			t.Fatalf("LinkGet: %v", err)
		}
		if got.AddressCurrent {
			t.Errorf("LinkGet after an address change: AddressCurrent true, want false")
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := s.LinkGet(ctx, "ZZZZZZZZZZZ")
		wantCode(t, "LinkGet unknown", err, nudge.ENOTFOUND)
	})
	t.Run("ConflictIsAllOrNone", func(t *testing.T) {
		fresh := &nudge.Link{Code: "EEEEEEEEEEE", URL: "https://y.io", MessageID: "m5", ContactID: "c1", Channel: nudge.ChannelEmail, CreatedAt: now}
		dup := *click
		err := s.LinkCreate(ctx, []*nudge.Link{fresh, &dup})
		wantCode(t, "LinkCreate with a taken code", err, nudge.ECONFLICT)
		_, err = s.LinkGet(ctx, fresh.Code)
		wantCode(t, "LinkGet of a link whose batch failed", err, nudge.ENOTFOUND)
	})
	t.Run("Invalid", func(t *testing.T) {
		for name, l := range map[string]*nudge.Link{
			"no code":          {URL: "https://x.io", Channel: nudge.ChannelSMS},
			"no url":           {Code: "FFFFFFFFFFF", Channel: nudge.ChannelSMS},
			"no channel":       {Code: "FFFFFFFFFFF", URL: "https://x.io"},
			"token no address": {Code: "FFFFFFFFFFF", Channel: nudge.LinkUnsubscribe},
		} {
			wantCode(t, "LinkCreate "+name, s.LinkCreate(ctx, []*nudge.Link{l}), nudge.EINVALID)
		}
	})
}
