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

	live := func(contactID string) []*nudge.Enrollment {
		var out []*nudge.Enrollment
		for _, e := range es {
			if e.ContactID == contactID && e.Live() {
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
