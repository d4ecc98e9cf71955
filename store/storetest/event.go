package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nudge/nudge"
)

// track and identify make ingest items. Timestamps are minutes after now;
// ReceivedAt is left for the store to fill with now.
func track(msgID, contactID, name string, minute int, props map[string]any) nudge.IngestItem {
	return nudge.IngestItem{Event: &nudge.Event{MessageID: msgID, Type: nudge.EventTrack, ContactID: contactID,
		Name: name, Properties: props, Timestamp: now.Add(time.Duration(minute) * time.Minute)}}
}

func identify(msgID, contactID string, minute int, p *nudge.ContactPatch) nudge.IngestItem {
	p.ID = contactID
	return nudge.IngestItem{
		Event: &nudge.Event{MessageID: msgID, Type: nudge.EventIdentify, ContactID: contactID,
			Properties: p.Attributes, Timestamp: now.Add(time.Duration(minute) * time.Minute)},
		Patch: p,
	}
}

// asStored is the event an item should be stored as, Seq aside.
func asStored(it nudge.IngestItem, receivedAt time.Time) *nudge.Event {
	e := *it.Event
	if e.ReceivedAt.IsZero() {
		e.ReceivedAt = receivedAt
	}
	return &e
}

var ignoreSeq = cmpopts.IgnoreFields(nudge.Event{}, "Seq")

func listAll(t testing.TB, s nudge.Store, contactID string) []*nudge.Event {
	t.Helper()
	page, err := s.EventList(ctx, &nudge.EventListParams{ContactID: contactID, Limit: 1000})
	if err != nil {
		t.Fatalf("EventList(%s): %v", contactID, err)
	}
	return page.Events
}

func testEventIngest(t *testing.T, open func(t *testing.T) nudge.Store) {
	before := now.Add(-time.Hour)
	m1 := track("m1", "u1", "page.viewed", 0, map[string]any{"path": "/pricing"})
	m1again := track("m1", "u1", "page.viewed", 5, map[string]any{"path": "/other"})
	tests := []struct {
		name         string
		before       []*nudge.ContactPatch // merged an hour before
		calls        [][]nudge.IngestItem  // ingested at now, one call each
		wantDup      [][]bool
		wantContacts []*nudge.Contact
		wantMissing  []string                  // contacts that must not exist
		wantEvents   map[string][]*nudge.Event // by contact, newest first
	}{
		{
			name:         "a track for an unknown contact creates it",
			calls:        [][]nudge.IngestItem{{m1}},
			wantDup:      [][]bool{{false}},
			wantContacts: []*nudge.Contact{{ID: "u1", CreatedAt: now, UpdatedAt: now}},
			wantEvents:   map[string][]*nudge.Event{"u1": {asStored(m1, now)}},
		},
		{
			name:   "a track does not change a known contact",
			before: []*nudge.ContactPatch{{ID: "u1", Email: ptr("ann@example.com")}},
			calls:  [][]nudge.IngestItem{{m1}},
			wantContacts: []*nudge.Contact{{ID: "u1", Email: "ann@example.com",
				CreatedAt: before, UpdatedAt: before}},
			wantDup: [][]bool{{false}},
		},
		{
			name:   "an identify merges its traits",
			before: []*nudge.ContactPatch{{ID: "u1", Email: ptr("ann@example.com"), Attributes: map[string]any{"plan": "free", "seats": float64(2)}}},
			calls: [][]nudge.IngestItem{{identify("m1", "u1", 0, &nudge.ContactPatch{LifecycleStage: ptr(nudge.StageLead),
				Attributes: map[string]any{"plan": "pro"}})}},
			wantDup: [][]bool{{false}},
			wantContacts: []*nudge.Contact{{ID: "u1", Email: "ann@example.com", LifecycleStage: nudge.StageLead,
				Attributes: map[string]any{"plan": "pro", "seats": float64(2)}, CreatedAt: before, UpdatedAt: now}},
		},
		{
			name: "an identify for an unknown contact creates it with its traits",
			calls: [][]nudge.IngestItem{{identify("m1", "u1", 0, &nudge.ContactPatch{Email: ptr("ann@example.com"),
				Attributes: map[string]any{"plan": "pro"}})}},
			wantDup: [][]bool{{false}},
			wantContacts: []*nudge.Contact{{ID: "u1", Email: "ann@example.com",
				Attributes: map[string]any{"plan": "pro"}, CreatedAt: now, UpdatedAt: now}},
		},
		{
			name:       "a duplicate in a later call is not stored",
			calls:      [][]nudge.IngestItem{{m1}, {m1again}},
			wantDup:    [][]bool{{false}, {true}},
			wantEvents: map[string][]*nudge.Event{"u1": {asStored(m1, now)}},
		},
		{
			name:       "a duplicate within one call is not stored",
			calls:      [][]nudge.IngestItem{{m1, m1again}},
			wantDup:    [][]bool{{false, true}},
			wantEvents: map[string][]*nudge.Event{"u1": {asStored(m1, now)}},
		},
		{
			name: "new and duplicate items mixed",
			calls: [][]nudge.IngestItem{
				{track("m1", "u1", "a", 0, nil)},
				{track("m2", "u1", "b", 1, nil), track("m1", "u1", "a", 0, nil), track("m3", "u2", "c", 2, nil), track("m2", "u1", "b", 1, nil)},
			},
			wantDup: [][]bool{{false}, {false, true, false, true}},
			wantEvents: map[string][]*nudge.Event{
				"u1": {asStored(track("m2", "u1", "b", 1, nil), now), asStored(track("m1", "u1", "a", 0, nil), now)},
				"u2": {asStored(track("m3", "u2", "c", 2, nil), now)},
			},
		},
		{
			name: "a duplicate identify does not re-apply its traits",
			calls: [][]nudge.IngestItem{
				{identify("m1", "u1", 0, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}})},
				{identify("m2", "u1", 1, &nudge.ContactPatch{Attributes: map[string]any{"plan": "enterprise"}})},
				{identify("m1", "u1", 0, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}})},
			},
			wantDup: [][]bool{{false}, {false}, {true}},
			wantContacts: []*nudge.Contact{{ID: "u1", Attributes: map[string]any{"plan": "enterprise"},
				CreatedAt: now, UpdatedAt: now}},
		},
		{
			name: "a duplicate identify within one call does not re-apply its traits",
			calls: [][]nudge.IngestItem{{
				identify("m1", "u1", 0, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}}),
				identify("m2", "u1", 1, &nudge.ContactPatch{Attributes: map[string]any{"plan": "enterprise"}}),
				identify("m1", "u1", 0, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}}),
			}},
			wantDup: [][]bool{{false, false, true}},
			wantContacts: []*nudge.Contact{{ID: "u1", Attributes: map[string]any{"plan": "enterprise"},
				CreatedAt: now, UpdatedAt: now}},
		},
		{
			name:        "a duplicate does not create its contact",
			calls:       [][]nudge.IngestItem{{track("m1", "u1", "a", 0, nil)}, {track("m1", "u2", "a", 0, nil)}},
			wantDup:     [][]bool{{false}, {true}},
			wantMissing: []string{"u2"},
		},
		{
			name: "identify then track in one call",
			calls: [][]nudge.IngestItem{{
				identify("m1", "u1", 0, &nudge.ContactPatch{Email: ptr("ann@example.com")}),
				track("m2", "u1", "a", 1, nil),
			}},
			wantDup: [][]bool{{false, false}},
			wantContacts: []*nudge.Contact{{ID: "u1", Email: "ann@example.com",
				CreatedAt: now, UpdatedAt: now}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if tt.before != nil {
				mustMerge(t, s, before, tt.before...)
			}
			var gotDup [][]bool
			for _, items := range tt.calls {
				gotDup = append(gotDup, mustIngest(t, s, now, items...))
			}
			if d := diff(tt.wantDup, gotDup); d != "" {
				t.Errorf("Duplicate (-want +got):\n%s", d)
			}
			for _, want := range tt.wantContacts {
				if d := diff(want, mustGet(t, s, want.ID)); d != "" {
					t.Errorf("contact %s (-want +got):\n%s", want.ID, d)
				}
			}
			for _, id := range tt.wantMissing {
				_, err := s.ContactGet(ctx, id)
				wantCode(t, "ContactGet("+id+")", err, nudge.ENOTFOUND)
			}
			for id, want := range tt.wantEvents {
				if d := diff(want, listAll(t, s, id), ignoreSeq); d != "" {
					t.Errorf("events of %s (-want +got):\n%s", id, d)
				}
			}
		})
	}

	t.Run("no items", func(t *testing.T) {
		s := open(t)
		r, err := s.EventIngest(ctx, nil, now)
		if err != nil || len(r.Duplicate) != 0 {
			t.Errorf("EventIngest(nil) = %+v, %v; want no results, no error", r, err)
		}
	})

	t.Run("an item without message id", func(t *testing.T) {
		s := open(t)
		_, err := s.EventIngest(ctx, []nudge.IngestItem{track("", "u1", "a", 0, nil)}, now)
		wantCode(t, "EventIngest without message id", err, nudge.EINVALID)
	})
}

func testEventRoundTrip(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	paris := time.FixedZone("CET", 3600)
	items := []nudge.IngestItem{
		{Event: &nudge.Event{
			MessageID:   "m1",
			Type:        nudge.EventTrack,
			ContactID:   "u1",
			AnonymousID: "anon-7",
			Name:        "order.completed",
			Properties: map[string]any{
				"total": 49.95, "currency": "EUR", "items": []any{"sku-1", "sku-2"},
				"count": float64(2), "gift": false, "coupon": nil,
				"shipping": map[string]any{"method": "express", "days": float64(1)},
			},
			Context: map[string]any{
				"ip":      "203.0.113.9",
				"library": map[string]any{"name": "analytics.js", "version": "4.1.0"},
			},
			Timestamp:  time.Date(2026, 3, 1, 10, 30, 15, 123456789, paris),
			ReceivedAt: now.Add(2 * time.Second).In(paris),
		}},
		{
			Event: &nudge.Event{MessageID: "m2", Type: nudge.EventIdentify, ContactID: "u1",
				Properties: map[string]any{"email": "ann@example.com", "plan": "pro"},
				Timestamp:  time.Date(2026, 3, 1, 10, 31, 0, 0, time.UTC)},
			Patch: &nudge.ContactPatch{ID: "u1", Email: ptr("ann@example.com"), Attributes: map[string]any{"plan": "pro"}},
		},
		{Event: &nudge.Event{MessageID: "m3", Type: nudge.EventTrack, ContactID: "u1", Name: "page.viewed",
			Timestamp: time.Date(2026, 3, 1, 10, 32, 0, 0, time.UTC)}},
	}
	mustIngest(t, s, now, items...)
	got := listAll(t, s, "u1")
	want := []*nudge.Event{asStored(items[2], now), asStored(items[1], now), asStored(items[0], now)}
	if d := diff(want, got, ignoreSeq); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	for _, e := range got {
		wantUTC(t, "event "+e.MessageID, e.Timestamp, e.ReceivedAt)
	}
	if len(got) == 3 {
		if !(got[2].Seq > 0 && got[2].Seq < got[1].Seq && got[1].Seq < got[0].Seq) {
			t.Errorf("Seq of events ingested in order: %d, %d, %d; want positive and increasing",
				got[2].Seq, got[1].Seq, got[0].Seq)
		}
	}
}

func testEventList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	// Ingested in this order, in two calls; m3 and m4 share a timestamp,
	// so m4, stored later, lists first.
	mustIngest(t, s, now,
		track("m1", "u1", "page.viewed", 0, nil),
		track("m2", "u1", "page.viewed", 2, nil),
		track("m3", "u1", "page.viewed", 1, nil),
	)
	mustIngest(t, s, now,
		track("m4", "u1", "page.viewed", 1, nil),
		identify("m5", "u1", 3, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}}),
		track("m6", "u1", "email.clicked", 4, nil),
		track("m7", "u2", "page.viewed", 5, nil),
	)

	pages := func(t *testing.T, p nudge.EventListParams) [][]string {
		t.Helper()
		var out [][]string
		for range 100 {
			page, err := s.EventList(ctx, &p)
			if err != nil {
				t.Fatalf("EventList page %d: %v", len(out)+1, err)
			}
			out = append(out, messageIDs(page.Events))
			if page.NextCursor == "" {
				return out
			}
			p.Cursor = page.NextCursor
		}
		t.Fatalf("EventList: more than 100 pages")
		return nil
	}
	tests := []struct {
		name string
		p    nudge.EventListParams
		want [][]string
	}{
		{"newest first, by timestamp then seq", nudge.EventListParams{ContactID: "u1"},
			[][]string{{"m6", "m5", "m2", "m4", "m3", "m1"}}},
		{"pages of two", nudge.EventListParams{ContactID: "u1", Limit: 2},
			[][]string{{"m6", "m5"}, {"m2", "m4"}, {"m3", "m1"}}},
		{"pages of four", nudge.EventListParams{ContactID: "u1", Limit: 4},
			[][]string{{"m6", "m5", "m2", "m4"}, {"m3", "m1"}}},
		{"by name", nudge.EventListParams{ContactID: "u1", Name: "page.viewed"},
			[][]string{{"m2", "m4", "m3", "m1"}}},
		{"by name, paged", nudge.EventListParams{ContactID: "u1", Name: "page.viewed", Limit: 3},
			[][]string{{"m2", "m4", "m3"}, {"m1"}}},
		{"by another name", nudge.EventListParams{ContactID: "u1", Name: "email.clicked"},
			[][]string{{"m6"}}},
		{"by a name nobody sent", nudge.EventListParams{ContactID: "u1", Name: "demo.booked"},
			[][]string{{}}},
		{"another contact", nudge.EventListParams{ContactID: "u2"}, [][]string{{"m7"}}},
		{"a contact that does not exist has no events", nudge.EventListParams{ContactID: "nobody"}, [][]string{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := diff(tt.want, pages(t, tt.p)); d != "" {
				t.Errorf("pages (-want +got):\n%s", d)
			}
		})
	}

	t.Run("a cursor that is not one", func(t *testing.T) {
		_, err := s.EventList(ctx, &nudge.EventListParams{ContactID: "u1", Cursor: "!not a cursor!"})
		wantCode(t, "EventList with a bad cursor", err, nudge.EINVALID)
	})
}

func testEventPrune(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	received := func(it nudge.IngestItem, ago time.Duration) nudge.IngestItem {
		it.Event.ReceivedAt = now.Add(-ago)
		return it
	}
	mustIngest(t, s, now,
		received(track("m1", "u1", "a", -48*60, nil), 48*time.Hour),
		received(track("m2", "u1", "a", -25*60, nil), 25*time.Hour),
		received(track("m3", "u1", "a", -23*60, nil), 23*time.Hour),
		received(track("m4", "u2", "a", 0, nil), 0),
	)
	n, err := s.EventPrune(ctx, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatalf("EventPrune: %v", err)
	}
	if n != 2 {
		t.Errorf("EventPrune deleted %d events, want 2", n)
	}
	if d := diff([]string{"m3"}, messageIDs(listAll(t, s, "u1"))); d != "" {
		t.Errorf("events of u1 after prune (-want +got):\n%s", d)
	}
	if d := diff([]string{"m4"}, messageIDs(listAll(t, s, "u2"))); d != "" {
		t.Errorf("events of u2 after prune (-want +got):\n%s", d)
	}
	mustGet(t, s, "u1") // pruning events keeps contacts
	n, err = s.EventPrune(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 0 {
		t.Errorf("EventPrune again = %d, %v; want 0, nil", n, err)
	}
}
