package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/nudge/nudge"
)

// engineStore is a store with the seams the journey engine owns. nudge.Store
// does not embed them (yet), so the journey and engine cases assert them: a
// store that lacks them fails those cases rather than skipping them.
type engineStore interface {
	nudge.Store
	nudge.JourneyStore
	nudge.EngineStore
}

func openEngine(t *testing.T, open func(t *testing.T) nudge.Store) engineStore {
	t.Helper()
	s := open(t)
	es, ok := s.(engineStore)
	if !ok {
		t.Fatalf("%T does not implement nudge.JourneyStore and nudge.EngineStore", s)
	}
	return es
}

func sourceHash(src string) string {
	h := sha256.Sum256([]byte(src))
	return hex.EncodeToString(h[:])
}

func publishParams(id, src string) *nudge.JourneyPublishParams {
	return &nudge.JourneyPublishParams{ID: id, Name: "Journey " + id, Source: []byte(src), Hash: sourceHash(src)}
}

func mustPublish(t testing.TB, s engineStore, at time.Time, id, src string) *nudge.JourneyVersion {
	t.Helper()
	v, _, err := s.JourneyPublish(ctx, publishParams(id, src), at)
	if err != nil {
		t.Fatalf("JourneyPublish(%s): %v", id, err)
	}
	return v
}

func mustJourney(t testing.TB, s engineStore, id string) *nudge.Journey {
	t.Helper()
	j, err := s.JourneyGet(ctx, id)
	if err != nil {
		t.Fatalf("JourneyGet(%s): %v", id, err)
	}
	return j
}

func mustSetStatus(t testing.TB, s engineStore, at time.Time, id, status string) {
	t.Helper()
	if err := s.JourneySetStatus(ctx, id, status, at); err != nil {
		t.Fatalf("JourneySetStatus(%s, %s): %v", id, status, err)
	}
}

func testJourneyPublish(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	t1, t2, t3 := now.Add(time.Hour), now.Add(2*time.Hour), now.Add(3*time.Hour)
	const src1, src2 = "id: welcome\nsteps: []\n", "id: welcome\nsteps: [{id: a}]\n"

	t.Run("the first publish makes version 1 of an active journey", func(t *testing.T) {
		v, created, err := s.JourneyPublish(ctx, publishParams("welcome", src1), now)
		if err != nil || !created {
			t.Fatalf("JourneyPublish = %v, created %v; want created", err, created)
		}
		want := &nudge.JourneyVersion{JourneyID: "welcome", Version: 1, Source: []byte(src1),
			Hash: sourceHash(src1), PublishedAt: now}
		if d := diff(want, v); d != "" {
			t.Errorf("version (-want +got):\n%s", d)
		}
		wantUTC(t, "PublishedAt", v.PublishedAt)
		wantJ := &nudge.Journey{ID: "welcome", Name: "Journey welcome", Status: nudge.JourneyActive,
			Version: 1, CreatedAt: now, UpdatedAt: now}
		got := mustJourney(t, s, "welcome")
		if d := diff(wantJ, got); d != "" {
			t.Errorf("journey (-want +got):\n%s", d)
		}
		wantUTC(t, "journey", got.CreatedAt, got.UpdatedAt)
	})

	t.Run("the same source again makes no version", func(t *testing.T) {
		v, created, err := s.JourneyPublish(ctx, publishParams("welcome", src1), t1)
		if err != nil || created {
			t.Fatalf("JourneyPublish = %v, created %v; want not created", err, created)
		}
		if v.Version != 1 || !v.PublishedAt.Equal(now) || string(v.Source) != src1 {
			t.Errorf("returned version %d published %v; want the latest, 1, published %v", v.Version, v.PublishedAt, now)
		}
		if j := mustJourney(t, s, "welcome"); j.Version != 1 || !j.UpdatedAt.Equal(now) {
			t.Errorf("journey version %d updated %v; want 1, %v", j.Version, j.UpdatedAt, now)
		}
	})

	t.Run("a new source makes the next version", func(t *testing.T) {
		p := publishParams("welcome", src2)
		p.Name = "Welcome series"
		v, created, err := s.JourneyPublish(ctx, p, t2)
		if err != nil || !created {
			t.Fatalf("JourneyPublish = %v, created %v; want created", err, created)
		}
		if v.Version != 2 || string(v.Source) != src2 || v.Hash != sourceHash(src2) || !v.PublishedAt.Equal(t2) {
			t.Errorf("version = %+v; want version 2 of src2 published at %v", v, t2)
		}
		wantJ := &nudge.Journey{ID: "welcome", Name: "Welcome series", Status: nudge.JourneyActive,
			Version: 2, CreatedAt: now, UpdatedAt: t2}
		if d := diff(wantJ, mustJourney(t, s, "welcome")); d != "" {
			t.Errorf("journey (-want +got):\n%s", d)
		}
	})

	t.Run("going back to an earlier source is a new version", func(t *testing.T) {
		v, created, err := s.JourneyPublish(ctx, publishParams("welcome", src1), t3)
		if err != nil || !created || v.Version != 3 {
			t.Fatalf("JourneyPublish = version %v, created %v, %v; want version 3 created", v, created, err)
		}
	})

	t.Run("versions", func(t *testing.T) {
		got, err := s.JourneyVersionList(ctx, "welcome")
		if err != nil {
			t.Fatalf("JourneyVersionList: %v", err)
		}
		want := []*nudge.JourneyVersion{
			{JourneyID: "welcome", Version: 1, Hash: sourceHash(src1), PublishedAt: now},
			{JourneyID: "welcome", Version: 2, Hash: sourceHash(src2), PublishedAt: t2},
			{JourneyID: "welcome", Version: 3, Hash: sourceHash(src1), PublishedAt: t3},
		}
		if d := diff(want, got); d != "" {
			t.Errorf("JourneyVersionList, oldest first, without source (-want +got):\n%s", d)
		}
		v, err := s.JourneyVersionGet(ctx, "welcome", 2)
		if err != nil {
			t.Fatalf("JourneyVersionGet(welcome, 2): %v", err)
		}
		wantV := &nudge.JourneyVersion{JourneyID: "welcome", Version: 2, Source: []byte(src2),
			Hash: sourceHash(src2), PublishedAt: t2}
		if d := diff(wantV, v); d != "" {
			t.Errorf("JourneyVersionGet (-want +got):\n%s", d)
		}
		_, err = s.JourneyVersionGet(ctx, "welcome", 4)
		wantCode(t, "JourneyVersionGet(welcome, 4)", err, nudge.ENOTFOUND)
		_, err = s.JourneyVersionGet(ctx, "nope", 1)
		wantCode(t, "JourneyVersionGet(nope, 1)", err, nudge.ENOTFOUND)
		vs, err := s.JourneyVersionList(ctx, "nope")
		if err != nil || len(vs) != 0 {
			t.Errorf("JourneyVersionList(nope) = %v, %v; want none", vs, err)
		}
	})

	t.Run("unknown journey", func(t *testing.T) {
		_, err := s.JourneyGet(ctx, "nope")
		wantCode(t, "JourneyGet(nope)", err, nudge.ENOTFOUND)
	})

	t.Run("an empty hash is computed", func(t *testing.T) {
		p := publishParams("nohash", src1)
		p.Hash = ""
		v, created, err := s.JourneyPublish(ctx, p, now)
		if err != nil || !created || v.Hash != sourceHash(src1) {
			t.Fatalf("JourneyPublish without hash = %+v, %v, %v; want hash %s", v, created, err, sourceHash(src1))
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for name, p := range map[string]*nudge.JourneyPublishParams{
			"no id":           {Source: []byte(src1)},
			"no source":       {ID: "x"},
			"a wrong hash":    {ID: "x", Source: []byte(src1), Hash: sourceHash(src2)},
			"nil params":      nil,
			"a blank id only": {ID: "", Source: []byte(src1), Hash: sourceHash(src1)},
		} {
			_, _, err := s.JourneyPublish(ctx, p, now)
			wantCode(t, "JourneyPublish with "+name, err, nudge.EINVALID)
		}
		_, err := s.JourneyGet(ctx, "x")
		wantCode(t, "JourneyGet(x) after invalid publishes", err, nudge.ENOTFOUND)
	})
}

func testJourneyStatus(t *testing.T, open func(t *testing.T) nudge.Store) {
	later, latest := now.Add(time.Hour), now.Add(2*time.Hour)
	const src, src2 = "id: j\n", "id: j\n# changed\n"
	tests := []struct {
		name    string
		set     []string // statuses set, in order, at later
		publish string   // then published at latest, if set
		want    string
		version int64
	}{
		{name: "pause", set: []string{nudge.JourneyPaused}, want: nudge.JourneyPaused, version: 1},
		{name: "resume", set: []string{nudge.JourneyPaused, nudge.JourneyActive}, want: nudge.JourneyActive, version: 1},
		{name: "archive", set: []string{nudge.JourneyArchived}, want: nudge.JourneyArchived, version: 1},
		{name: "publishing keeps a paused journey paused", set: []string{nudge.JourneyPaused}, publish: src2,
			want: nudge.JourneyPaused, version: 2},
		{name: "publishing the same source keeps a paused journey paused", set: []string{nudge.JourneyPaused},
			publish: src, want: nudge.JourneyPaused, version: 1},
		{name: "publishing an archived journey makes it active", set: []string{nudge.JourneyArchived},
			publish: src2, want: nudge.JourneyActive, version: 2},
		{name: "publishing an archived journey's same source makes it active", set: []string{nudge.JourneyArchived},
			publish: src, want: nudge.JourneyActive, version: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openEngine(t, open)
			mustPublish(t, s, now, "j", src)
			for _, st := range tt.set {
				mustSetStatus(t, s, later, "j", st)
			}
			wantUpdated := later
			if tt.publish != "" {
				mustPublish(t, s, latest, "j", tt.publish)
				if tt.publish != src || tt.want != tt.set[len(tt.set)-1] {
					wantUpdated = latest
				}
			}
			j := mustJourney(t, s, "j")
			if j.Status != tt.want || j.Version != tt.version || !j.UpdatedAt.Equal(wantUpdated) {
				t.Errorf("journey status %q version %d updated %v; want %q, %d, %v",
					j.Status, j.Version, j.UpdatedAt, tt.want, tt.version, wantUpdated)
			}
		})
	}

	t.Run("an unknown status is invalid and names the value", func(t *testing.T) {
		s := openEngine(t, open)
		mustPublish(t, s, now, "j", src)
		err := s.JourneySetStatus(ctx, "j", "live", later)
		wantCode(t, "JourneySetStatus(live)", err, nudge.EINVALID)
		if !strings.Contains(nudge.ErrorMessage(err), `"live"`) {
			t.Errorf("error %q does not name the status \"live\"", nudge.ErrorMessage(err))
		}
		if j := mustJourney(t, s, "j"); j.Status != nudge.JourneyActive {
			t.Errorf("status after an invalid change = %q, want active", j.Status)
		}
	})

	t.Run("an unknown journey is not found", func(t *testing.T) {
		s := openEngine(t, open)
		wantCode(t, "JourneySetStatus(nope)", s.JourneySetStatus(ctx, "nope", nudge.JourneyPaused, later), nudge.ENOTFOUND)
	})
}

func testJourneyList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openEngine(t, open)
	got, err := s.JourneyList(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("JourneyList of an empty store = %v, %v; want none", got, err)
	}
	mustPublish(t, s, now, "b", "id: b\n")
	mustPublish(t, s, now, "c", "id: c\n")
	mustPublish(t, s, now, "a", "id: a\n")
	mustPublish(t, s, now.Add(time.Hour), "a", "id: a\n# v2\n")
	mustSetStatus(t, s, now.Add(time.Hour), "c", nudge.JourneyArchived)
	got, err = s.JourneyList(ctx)
	if err != nil {
		t.Fatalf("JourneyList: %v", err)
	}
	want := []*nudge.Journey{
		{ID: "a", Name: "Journey a", Status: nudge.JourneyActive, Version: 2, CreatedAt: now, UpdatedAt: now.Add(time.Hour)},
		{ID: "b", Name: "Journey b", Status: nudge.JourneyActive, Version: 1, CreatedAt: now, UpdatedAt: now},
		{ID: "c", Name: "Journey c", Status: nudge.JourneyArchived, Version: 1, CreatedAt: now, UpdatedAt: now.Add(time.Hour)},
	}
	if d := diff(want, got); d != "" {
		t.Errorf("JourneyList, by id, archived included (-want +got):\n%s", d)
	}
}
