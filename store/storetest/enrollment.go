package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testEnrollmentListLive(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := engineFixture(t, open)
	mustPublish(t, s, now, "k", "id: k\n")
	mustPut(t, s, now, &nudge.Contact{ID: "c3"})
	mustCommit(t, s, now, &nudge.EngineCommit{InboxDone: inboxSeqs(mustClaimInbox(t, s, now, 100))})
	// c1 and c2 have six enrollments each in two journeys, every third
	// ended; c3 has only an ended one.
	var es []*nudge.Enrollment
	for i := range 12 {
		e := waiting(id("e", i), []string{"j", "k"}[i%2], []string{"c1", "c2"}[i/6], now.Add(time.Duration(12-i)*time.Hour))
		e.Key = fmt.Sprint(i)
		e.Steps = map[string]nudge.StepRecord{"wait": {At: now}}
		e.Event = &nudge.Event{MessageID: e.ID, Type: nudge.EventTrack, ContactID: e.ContactID, Name: "go", Timestamp: now, ReceivedAt: now}
		if i%3 == 0 {
			e.State, e.WakeAt, e.EndedAt = nudge.EnrollmentConverted, time.Time{}, now
		}
		es = append(es, e)
	}
	ended := waiting("e-c3", "j", "c3", now.Add(time.Hour))
	ended.State, ended.WakeAt, ended.EndedAt = nudge.EnrollmentCompleted, time.Time{}, now
	es = append(es, ended)
	// Inserted out of id order: each contact's come back by id all the same.
	rev := slices.Clone(es)
	slices.Reverse(rev)
	mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: rev})

	// They come without their event and steps.
	live := func(contactID string) []*nudge.Enrollment {
		var out []*nudge.Enrollment
		for _, e := range es {
			if e.ContactID == contactID && e.Live() {
				e = clone(e)
				e.Event, e.Steps = nil, nil
				out = append(out, e)
			}
		}
		return out
	}
	t.Run("by contact, by id, whole", func(t *testing.T) {
		got, err := s.EnrollmentListLive(ctx, []string{"c2", "nobody", "c3", "c1"})
		if err != nil {
			t.Fatalf("EnrollmentListLive: %v", err)
		}
		want := map[string][]*nudge.Enrollment{"c1": live("c1"), "c2": live("c2")}
		if d := diff(want, got); d != "" {
			t.Errorf("EnrollmentListLive(c2, nobody, c3, c1) (-want +got):\n%s", d)
		}
	})
	t.Run("one contact", func(t *testing.T) {
		got, err := s.EnrollmentListLive(ctx, []string{"c1"})
		if err != nil {
			t.Fatalf("EnrollmentListLive: %v", err)
		}
		if d := diff([]string{"e0001", "e0002", "e0004", "e0005"}, enrollmentIDs(got["c1"])); d != "" || len(got) != 1 {
			t.Errorf("EnrollmentListLive(c1) = %v (-want +got ids of c1):\n%s", got, d)
		}
	})
	t.Run("none", func(t *testing.T) {
		for _, ids := range [][]string{nil, {}, {"c3"}, {"nobody"}} {
			got, err := s.EnrollmentListLive(ctx, ids)
			if err != nil || len(got) != 0 {
				t.Errorf("EnrollmentListLive(%q) = %v, %v; want empty, nil", ids, got, err)
			}
		}
	})
	t.Run("many ids", func(t *testing.T) {
		ids := []string{"c1"}
		for i := range 5000 {
			ids = append(ids, id("nobody", i))
		}
		got, err := s.EnrollmentListLive(ctx, ids)
		if err != nil {
			t.Fatalf("EnrollmentListLive of %d ids: %v", len(ids), err)
		}
		if len(got) != 1 || len(got["c1"]) != 4 {
			t.Errorf("EnrollmentListLive of %d ids = %v; want c1's 4 only", len(ids), got)
		}
	})
	t.Run("get many, ended ones too", func(t *testing.T) {
		ids := []string{"e0000", "nobody", "e0004", "e-c3"}
		got, err := s.EnrollmentGetMany(ctx, ids)
		if err != nil {
			t.Fatalf("EnrollmentGetMany: %v", err)
		}
		want := map[string]*nudge.Enrollment{}
		for _, id := range []string{"e0000", "e0004", "e-c3"} {
			e, err := s.EnrollmentGet(ctx, id)
			if err != nil {
				t.Fatalf("EnrollmentGet(%s): %v", id, err)
			}
			want[id] = e
		}
		if d := diff(want, got); d != "" {
			t.Errorf("EnrollmentGetMany(%q) (-want +got):\n%s", ids, d)
		}
		if got, err := s.EnrollmentGetMany(ctx, nil); err != nil || len(got) != 0 {
			t.Errorf("EnrollmentGetMany(nil) = %v, %v; want empty, nil", got, err)
		}
	})
	t.Run("an ended enrollment leaves", func(t *testing.T) {
		e := clone(live("c1")[0])
		e.State, e.WakeAt, e.EndedAt = nudge.EnrollmentExited, time.Time{}, now
		mustCommit(t, s, now, &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{e}})
		got, err := s.EnrollmentListLive(ctx, []string{"c1"})
		if err != nil {
			t.Fatalf("EnrollmentListLive: %v", err)
		}
		if d := diff([]string{"e0002", "e0004", "e0005"}, enrollmentIDs(got["c1"])); d != "" {
			t.Errorf("EnrollmentListLive(c1) after e0001 exited (-want +got):\n%s", d)
		}
	})
}

// contactDates lists every page of ContactListDates as "id tz value",
// "id tz time" for created_at and updated_at.
func contactDates(t *testing.T, s engineStore, p nudge.ContactDateParams) []string {
	t.Helper()
	out := []string{}
	for range 100 {
		page, err := s.ContactListDates(ctx, &p)
		if err != nil {
			t.Fatalf("ContactListDates(%+v): %v", p, err)
		}
		for _, d := range page.Dates {
			v := d.Value
			if !p.Attribute {
				wantUTC(t, "ContactDate.Time", d.Time)
				v = d.Time.Format(time.RFC3339)
			}
			out = append(out, d.ContactID+" "+d.Timezone+" "+v)
		}
		if page.NextCursor == "" {
			return out
		}
		p.Cursor = page.NextCursor
	}
	t.Fatal("ContactListDates: more than 100 pages")
	return nil
}

func testContactListDates(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	later := now.Add(48 * time.Hour) // 2026-03-04
	mustPut(t, s, now,
		&nudge.Contact{ID: "a", Attributes: map[string]any{"renewal_date": "2026-03-12"}},
		&nudge.Contact{ID: "b", Attributes: map[string]any{"renewal_date": "2026-03-13"}},
		&nudge.Contact{ID: "c", Attributes: map[string]any{"renewal_date": "2026-03-14T23:30:00-05:00"}},
		&nudge.Contact{ID: "d", Attributes: map[string]any{"renewal_date": "2026-03-20"}},
		&nudge.Contact{ID: "e", Attributes: map[string]any{"plan": "pro"}},
		&nudge.Contact{ID: "f", Timezone: "Asia/Tokyo", Attributes: map[string]any{"renewal_date": "2026-03-12"}},
	)
	mustPut(t, s, later, &nudge.Contact{ID: "g", Attributes: map[string]any{"renewal.date": "2026-03-12", "renewal": map[string]any{"date": "2026-03-13"}}})
	renewal := nudge.ContactDateParams{Field: "renewal_date", Attribute: true, From: "2026-03-12", To: "2026-03-14"}
	want := []string{"a  2026-03-12", "f Asia/Tokyo 2026-03-12", "b  2026-03-13", "c  2026-03-14T23:30:00-05:00"}

	t.Run("an attribute's days, by day then id", func(t *testing.T) {
		if d := diff(want, contactDates(t, s, renewal)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("pages of any size give the same list", func(t *testing.T) {
		for _, n := range []int{1, 2, 3} {
			p := renewal
			p.Limit = n
			if d := diff(want, contactDates(t, s, p)); d != "" {
				t.Errorf("limit %d (-want +got):\n%s", n, d)
			}
		}
	})
	t.Run("a name with a dot is one attribute", func(t *testing.T) {
		p := nudge.ContactDateParams{Field: "renewal.date", Attribute: true, From: "2026-03-01", To: "2026-03-31"}
		if d := diff([]string{"g  2026-03-12"}, contactDates(t, s, p)); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("a changed contact moves to its new day", func(t *testing.T) {
		mustMerge(t, s, later, &nudge.ContactPatch{ID: "d", Attributes: map[string]any{"renewal_date": "2026-03-13"}},
			&nudge.ContactPatch{ID: "b", Attributes: map[string]any{"renewal_date": nil}})
		got := contactDates(t, s, renewal)
		if d := diff([]string{"a  2026-03-12", "f Asia/Tokyo 2026-03-12", "d  2026-03-13", "c  2026-03-14T23:30:00-05:00"}, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	})
	t.Run("created_at and updated_at by their UTC day", func(t *testing.T) {
		p := nudge.ContactDateParams{Field: "created_at", From: "2026-03-04", To: "2026-03-05", Limit: 1}
		if d := diff([]string{"g  2026-03-04T09:00:00Z"}, contactDates(t, s, p)); d != "" {
			t.Errorf("created_at (-want +got):\n%s", d)
		}
		p = nudge.ContactDateParams{Field: "updated_at", From: "2026-03-02", To: "2026-03-02"}
		if d := diff([]string{"a  2026-03-02T09:00:00Z", "c  2026-03-02T09:00:00Z", "e  2026-03-02T09:00:00Z", "f Asia/Tokyo 2026-03-02T09:00:00Z"}, contactDates(t, s, p)); d != "" {
			t.Errorf("updated_at (-want +got):\n%s", d)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for name, p := range map[string]nudge.ContactDateParams{
			"a bad day":            {Field: "renewal_date", Attribute: true, From: "12/03/2026", To: "2026-03-14"},
			"a bad cursor":         {Field: "renewal_date", Attribute: true, From: "2026-03-12", To: "2026-03-14", Cursor: "!!"},
			"not a contact date":   {Field: "email", From: "2026-03-12", To: "2026-03-14"},
			"an empty attribute":   {Field: "", Attribute: true, From: "2026-03-12", To: "2026-03-14"},
			"a cursor of no store": {Field: "created_at", From: "2026-03-12", To: "2026-03-14", Cursor: nudge.ContactDateCursor("soon", "a")},
		} {
			_, err := s.ContactListDates(ctx, &p)
			wantCode(t, name, err, nudge.EINVALID)
		}
	})
}
