package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// lease is how long the engine cases claim work for.
const lease = time.Minute

func mustClaimInbox(t testing.TB, s engineStore, at time.Time, limit int) []*nudge.InboxItem {
	t.Helper()
	items, err := s.InboxClaim(ctx, at, limit, lease)
	if err != nil {
		t.Fatalf("InboxClaim: %v", err)
	}
	return items
}

// inboxKeys names inbox items as "contact/message id", "contact/" for a
// contact change.
func inboxKeys(items []*nudge.InboxItem) []string {
	keys := []string{}
	for _, it := range items {
		k := it.ContactID + "/"
		if it.Event != nil {
			k += it.Event.MessageID
		}
		keys = append(keys, k)
	}
	return keys
}

func inboxSeqs(items []*nudge.InboxItem) []int64 {
	seqs := []int64{}
	for _, it := range items {
		seqs = append(seqs, it.Seq)
	}
	return seqs
}

func testInbox(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	t1, t2, t3 := now.Add(time.Second), now.Add(2*time.Second), now.Add(3*time.Second)

	// Ingest: one item per stored event; an identify's traits add none of
	// their own; duplicates, in the call or of an earlier one, add none.
	mustIngest(t, s, now,
		track("m1", "c1", "page.viewed", 0, map[string]any{"path": "/pricing"}),
		identify("m2", "c1", 1, &nudge.ContactPatch{Email: ptr("ann@example.com")}),
		track("m3", "c2", "page.viewed", 2, nil),
		track("m1", "c1", "page.viewed", 0, nil),
	)
	mustIngest(t, s, now, track("m1", "c1", "page.viewed", 0, nil), identify("m2", "c1", 1, &nudge.ContactPatch{Email: ptr("bob@example.com")}))
	// ContactMerge: one item per changed contact, however many patches
	// it had; none for a patch that changes nothing.
	mustMerge(t, s, t1,
		&nudge.ContactPatch{ID: "c3", Email: ptr("cy@example.com")},
		&nudge.ContactPatch{ID: "c4"},
		&nudge.ContactPatch{ID: "c3", JourneyStage: ptr("trial")},
	)
	mustMerge(t, s, t2,
		&nudge.ContactPatch{ID: "c3", Email: ptr("cy@example.com"), JourneyStage: ptr("trial")},
		&nudge.ContactPatch{ID: "c1", Attributes: map[string]any{"plan": nil}},
	)
	// ContactPut: an item when it creates or changes the contact.
	mustPut(t, s, t2, &nudge.Contact{ID: "c5", Email: "dee@example.com"})
	mustPut(t, s, t3, &nudge.Contact{ID: "c5", Email: "dee@example.com"})
	mustPut(t, s, t3, &nudge.Contact{ID: "c5", Email: "dee@example.com", Attributes: map[string]any{"plan": "pro"}})

	items := mustClaimInbox(t, s, t3, 100)
	want := []string{"c1/m1", "c1/m2", "c2/m3", "c3/", "c4/", "c5/", "c5/"}
	if d := diff(want, inboxKeys(items)); d != "" {
		t.Fatalf("inbox items, oldest first (-want +got):\n%s", d)
	}
	for i := 1; i < len(items); i++ {
		if items[i].Seq <= items[i-1].Seq {
			t.Errorf("inbox seqs %v do not increase", inboxSeqs(items))
			break
		}
	}
	t.Run("items carry their stored event", func(t *testing.T) {
		events := map[string]*nudge.Event{}
		for _, c := range []string{"c1", "c2"} {
			for _, e := range listAll(t, s, c) {
				events[e.MessageID] = e
			}
		}
		for _, it := range items[:3] {
			if d := diff(events[it.Event.MessageID], it.Event); d != "" {
				t.Errorf("item %d event (-want +got):\n%s", it.Seq, d)
			}
			wantUTC(t, "item event", it.Event.Timestamp, it.Event.ReceivedAt)
		}
	})
	t.Run("items carry the time of the change", func(t *testing.T) {
		wantAt := []time.Time{now, now, now, t1, t1, t2, t3}
		for i, it := range items {
			if !it.At.Equal(wantAt[i]) {
				t.Errorf("item %s At = %v, want %v", inboxKeys(items[i : i+1])[0], it.At, wantAt[i])
			}
			wantUTC(t, "item At", it.At)
		}
	})
	t.Run("items carry the contact before and after the change", func(t *testing.T) {
		// A track event carries none; a change that created its contact
		// (c1 by the track event before its identify) has no before.
		want := []string{"c1/m1 - -", "c1/m2 - ann@example.com", "c2/m3 - -", "c3/ - cy@example.com/trial",
			"c4/ - ", "c5/ - dee@example.com", "c5/ dee@example.com dee@example.com/plan=pro"}
		if d := diff(want, inboxChanges(items)); d != "" {
			t.Errorf("inbox items' contacts (-want +got):\n%s", d)
		}
	})
	t.Run("every kind of contact change carries before and after", func(t *testing.T) {
		testInboxChanges(t, open)
	})
}

// inboxChanges names inbox items by inboxKeys and their Before and After,
// "-" for nil, else email/journey_stage/lifecycle_stage/attributes without
// empty parts.
func inboxChanges(items []*nudge.InboxItem) []string {
	say := func(c *nudge.Contact) string {
		if c == nil {
			return "-"
		}
		parts := []string{c.Email}
		for _, p := range []string{c.JourneyStage, c.LifecycleStage} {
			if p != "" {
				parts = append(parts, p)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(c.Attributes)) {
			parts = append(parts, fmt.Sprintf("%s=%v", k, c.Attributes[k]))
		}
		return strings.Join(parts, "/")
	}
	keys := inboxKeys(items)
	for i, it := range items {
		keys[i] += " " + say(it.Before) + " " + say(it.After)
	}
	return keys
}

// testInboxChanges checks that every path that changes a contact leaves
// the contact before and after the change in its inbox item, for the
// engine's attribute triggers.
func testInboxChanges(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	t1, t2 := now.Add(time.Second), now.Add(2*time.Second)
	mustMerge(t, s, now, &nudge.ContactPatch{ID: "c1", Email: ptr("a@example.com"), LifecycleStage: ptr("lead")})
	// Identify: each identify carries its own change, in order; one that
	// changes nothing carries the same contact twice.
	mustIngest(t, s, t1,
		identify("m1", "c1", 1, &nudge.ContactPatch{LifecycleStage: ptr("customer")}),
		identify("m2", "c1", 2, &nudge.ContactPatch{Attributes: map[string]any{"plan": "pro"}}),
		identify("m3", "c1", 3, &nudge.ContactPatch{LifecycleStage: ptr("customer")}),
		identify("m4", "c2", 4, &nudge.ContactPatch{Email: ptr("b@example.com")}),
	)
	// ContactMerge: one change per contact, from before its first patch to
	// after its last.
	mustMerge(t, s, t1,
		&nudge.ContactPatch{ID: "c1", LifecycleStage: ptr("opportunity")},
		&nudge.ContactPatch{ID: "c1", Attributes: map[string]any{"seats": 3}},
	)
	// An update_contact step's patch, through EngineCommit.
	mustCommit(t, s, t2, &nudge.EngineCommit{ContactPatches: []*nudge.ContactPatch{{ID: "c1", JourneyStage: ptr("onboarding")}}})
	// ContactPut replaces the contact wholly.
	mustPut(t, s, t2, &nudge.Contact{ID: "c1", Email: "a@example.com", LifecycleStage: "customer"})

	items := mustClaimInbox(t, s, t2, 100)
	want := []string{
		"c1/ - a@example.com/lead",
		"c1/m1 a@example.com/lead a@example.com/customer",
		"c1/m2 a@example.com/customer a@example.com/customer/plan=pro",
		"c1/m3 a@example.com/customer/plan=pro a@example.com/customer/plan=pro",
		"c2/m4 - b@example.com",
		"c1/ a@example.com/customer/plan=pro a@example.com/opportunity/plan=pro/seats=3",
		"c1/ a@example.com/opportunity/plan=pro/seats=3 a@example.com/onboarding/opportunity/plan=pro/seats=3",
		"c1/ a@example.com/onboarding/opportunity/plan=pro/seats=3 a@example.com/customer",
	}
	if d := diff(want, inboxChanges(items)); d != "" {
		t.Errorf("inbox items' contacts (-want +got):\n%s", d)
	}
	for _, it := range items {
		for _, c := range []*nudge.Contact{it.Before, it.After} {
			if c == nil {
				continue
			}
			if c.ID != it.ContactID {
				t.Errorf("item %d: a contact of id %q, want %q", it.Seq, c.ID, it.ContactID)
			}
			wantUTC(t, "item contact", c.CreatedAt, c.UpdatedAt)
		}
	}
	if got := items[len(items)-1].After.UpdatedAt; !got.Equal(t2) {
		t.Errorf("the last change's contact UpdatedAt = %v, want %v", got, t2)
	}
}

func testInboxClaim(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	for i := 1; i <= 5; i++ {
		mustIngest(t, s, now, track(id("m", i), "c1", "page.viewed", i, nil))
	}
	half := now.Add(lease / 2)
	steps := []struct {
		name  string
		at    time.Time
		limit int
		want  []string
	}{
		{"the oldest, up to the limit", now, 2, []string{"c1/m0001", "c1/m0002"}},
		{"claimed items are not claimed again", now, 2, []string{"c1/m0003", "c1/m0004"}},
		{"the rest", half, 10, []string{"c1/m0005"}},
		{"nothing left to claim", half, 10, []string{}},
		{"a claim lasts its whole lease", now.Add(lease), 10, []string{}},
		{"expired claims are claimed again", now.Add(lease + time.Second), 10,
			[]string{"c1/m0001", "c1/m0002", "c1/m0003", "c1/m0004"}},
	}
	var claimed []*nudge.InboxItem
	for _, st := range steps {
		got := mustClaimInbox(t, s, st.at, st.limit)
		if d := diff(st.want, inboxKeys(got)); d != "" {
			t.Fatalf("%s: InboxClaim (-want +got):\n%s", st.name, d)
		}
		if claimed == nil {
			claimed = got
		}
	}

	t.Run("consumed items are gone", func(t *testing.T) {
		mustCommit(t, s, half, &nudge.EngineCommit{InboxDone: inboxSeqs(claimed)})
		got := mustClaimInbox(t, s, now.Add(10*lease), 10)
		if d := diff([]string{"c1/m0003", "c1/m0004", "c1/m0005"}, inboxKeys(got)); d != "" {
			t.Errorf("InboxClaim after InboxDone (-want +got):\n%s", d)
		}
	})

	t.Run("consuming an item consumed by another claim conflicts", func(t *testing.T) {
		// The claim of the first items expired and someone else consumed
		// them: this commit must not apply its work a second time.
		err := s.EngineCommit(ctx, &nudge.EngineCommit{InboxDone: inboxSeqs(claimed[:1])}, half)
		wantCode(t, "EngineCommit of a consumed inbox item", err, nudge.ECONFLICT)
	})

	t.Run("invalid lease", func(t *testing.T) {
		_, err := s.InboxClaim(ctx, now, 10, 0)
		wantCode(t, "InboxClaim with lease 0", err, nudge.EINVALID)
	})
}
