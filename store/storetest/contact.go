package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testContactPut(t *testing.T, open func(t *testing.T) nudge.Store) {
	later := now.Add(time.Hour)
	full := func() *nudge.Contact {
		return &nudge.Contact{
			ID:             "c1",
			Email:          "ann@example.com",
			Phone:          "+33612345678",
			Timezone:       "Europe/Paris",
			LifecycleStage: nudge.StageLead,
			JourneyStage:   "trial",
			IsCustomer:     false,
			Attributes:     map[string]any{"plan": "pro", "seats": float64(3), "beta": true},
		}
	}
	tests := []struct {
		name        string
		before      *nudge.Contact // put at now, if set
		put         *nudge.Contact // put at later
		want        *nudge.Contact
		wantCreated bool
	}{
		{
			name: "create",
			put:  full(),
			want: func() *nudge.Contact {
				c := full()
				c.CreatedAt, c.UpdatedAt = later, later
				return c
			}(),
			wantCreated: true,
		},
		{
			name: "create ignores the caller's timestamps",
			put: &nudge.Contact{ID: "c1", CreatedAt: now.Add(-24 * time.Hour),
				UpdatedAt: now.Add(-24 * time.Hour)},
			want:        &nudge.Contact{ID: "c1", CreatedAt: later, UpdatedAt: later},
			wantCreated: true,
		},
		{
			name:   "replace clears fields and attributes not given",
			before: full(),
			put: &nudge.Contact{ID: "c1", Email: "ann@example.org", IsCustomer: true,
				Attributes: map[string]any{"plan": "free"}},
			want: &nudge.Contact{ID: "c1", Email: "ann@example.org", IsCustomer: true,
				Attributes: map[string]any{"plan": "free"}, CreatedAt: now, UpdatedAt: later},
		},
		{
			name:   "replace with nothing but the id",
			before: full(),
			put:    &nudge.Contact{ID: "c1"},
			want:   &nudge.Contact{ID: "c1", CreatedAt: now, UpdatedAt: later},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if tt.before != nil {
				mustPut(t, s, now, tt.before)
			}
			got, created, err := s.ContactPut(ctx, tt.put, later)
			if err != nil {
				t.Fatalf("ContactPut: %v", err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			if d := diff(tt.want, got); d != "" {
				t.Errorf("ContactPut returned (-want +got):\n%s", d)
			}
			wantUTC(t, "returned contact", got.CreatedAt, got.UpdatedAt)
			stored := mustGet(t, s, "c1")
			if d := diff(tt.want, stored); d != "" {
				t.Errorf("ContactGet after put (-want +got):\n%s", d)
			}
			wantUTC(t, "stored contact", stored.CreatedAt, stored.UpdatedAt)
		})
	}

	t.Run("missing id", func(t *testing.T) {
		s := open(t)
		_, _, err := s.ContactPut(ctx, &nudge.Contact{Email: "ann@example.com"}, now)
		wantCode(t, "ContactPut without id", err, nudge.EINVALID)
	})
}

func testContactGet(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	mustPut(t, s, now, &nudge.Contact{ID: "c1"})
	c, err := s.ContactGet(ctx, "nobody")
	wantCode(t, "ContactGet(nobody)", err, nudge.ENOTFOUND)
	if c != nil {
		t.Errorf("ContactGet(nobody) returned %+v with its error", c)
	}
	if got := mustGet(t, s, "c1"); got.ID != "c1" {
		t.Errorf("ContactGet(c1).ID = %q", got.ID)
	}
	mustPut(t, s, now, &nudge.Contact{ID: "c2", Email: "c2@example.com"})
	many, err := s.ContactGetMany(ctx, []string{"c2", "nobody", "c1"})
	if err != nil {
		t.Fatalf("ContactGetMany: %v", err)
	}
	if len(many) != 2 || many["c1"] == nil || many["c2"] == nil || many["c2"].Email != "c2@example.com" {
		t.Errorf("ContactGetMany(c2, nobody, c1) = %v; want c1 and c2 only, whole", many)
	}
	if many, err := s.ContactGetMany(ctx, nil); err != nil || len(many) != 0 {
		t.Errorf("ContactGetMany(nil) = %v, %v; want empty, nil", many, err)
	}
}

func testContactMerge(t *testing.T, open func(t *testing.T) nudge.Store) {
	later := now.Add(time.Hour)
	ann := func() *nudge.ContactPatch {
		return &nudge.ContactPatch{
			ID: "c1", Email: ptr("ann@example.com"), Phone: ptr("+15550100"),
			LifecycleStage: ptr(nudge.StageLead),
			Attributes:     map[string]any{"plan": "pro", "seats": float64(3)},
		}
	}
	annContact := func() nudge.Contact {
		return nudge.Contact{ID: "c1", Email: "ann@example.com", Phone: "+15550100",
			LifecycleStage: nudge.StageLead, Attributes: map[string]any{"plan": "pro", "seats": float64(3)},
			CreatedAt: now, UpdatedAt: later}
	}
	with := func(c nudge.Contact, f func(c *nudge.Contact)) *nudge.Contact {
		c.Attributes = map[string]any{}
		for k, v := range annContact().Attributes {
			c.Attributes[k] = v
		}
		f(&c)
		return &c
	}
	tests := []struct {
		name    string
		before  []*nudge.ContactPatch // merged at now
		patches []*nudge.ContactPatch // merged at later
		want    []nudge.ContactMergeResult
	}{
		{
			name:    "creates a contact",
			patches: []*nudge.ContactPatch{ann()},
			want: []nudge.ContactMergeResult{{Created: true, Contact: with(annContact(), func(c *nudge.Contact) {
				c.CreatedAt = later
			})}},
		},
		{
			name:   "updates, keeping what the patch leaves out",
			before: []*nudge.ContactPatch{ann()},
			patches: []*nudge.ContactPatch{{ID: "c1", LifecycleStage: ptr(nudge.StageCustomer),
				IsCustomer: ptr(true), Timezone: ptr("America/New_York"),
				Attributes: map[string]any{"seats": float64(4), "owner": "sam"}}},
			want: []nudge.ContactMergeResult{{Contact: with(annContact(), func(c *nudge.Contact) {
				c.LifecycleStage, c.IsCustomer, c.Timezone = nudge.StageCustomer, true, "America/New_York"
				c.Attributes["seats"], c.Attributes["owner"] = float64(4), "sam"
			})}},
		},
		{
			name:    "a nil attribute value deletes the attribute",
			before:  []*nudge.ContactPatch{ann()},
			patches: []*nudge.ContactPatch{{ID: "c1", Attributes: map[string]any{"seats": nil, "absent": nil}}},
			want: []nudge.ContactMergeResult{{Contact: with(annContact(), func(c *nudge.Contact) {
				delete(c.Attributes, "seats")
			})}},
		},
		{
			name:    "a pointer to empty clears a field",
			before:  []*nudge.ContactPatch{ann()},
			patches: []*nudge.ContactPatch{{ID: "c1", Phone: ptr(""), LifecycleStage: ptr("")}},
			want: []nudge.ContactMergeResult{{Contact: with(annContact(), func(c *nudge.Contact) {
				c.Phone, c.LifecycleStage = "", ""
			})}},
		},
		{
			name:    "is_customer set to false",
			before:  []*nudge.ContactPatch{{ID: "c1", IsCustomer: ptr(true)}},
			patches: []*nudge.ContactPatch{{ID: "c1", IsCustomer: ptr(false)}},
			want: []nudge.ContactMergeResult{{Contact: &nudge.Contact{ID: "c1", IsCustomer: false,
				CreatedAt: now, UpdatedAt: later}}},
		},
		{
			name: "two patches of one id in one call: the second sees the first",
			patches: []*nudge.ContactPatch{
				{ID: "c1", Email: ptr("ann@example.com"), Attributes: map[string]any{"plan": "pro"}},
				{ID: "c1", Phone: ptr("+15550100"), Attributes: map[string]any{"beta": true}},
			},
			want: []nudge.ContactMergeResult{
				{Created: true, Contact: &nudge.Contact{ID: "c1", Email: "ann@example.com",
					Attributes: map[string]any{"plan": "pro"}, CreatedAt: later, UpdatedAt: later}},
				{Created: false, Contact: &nudge.Contact{ID: "c1", Email: "ann@example.com", Phone: "+15550100",
					Attributes: map[string]any{"plan": "pro", "beta": true}, CreatedAt: later, UpdatedAt: later}},
			},
		},
		{
			name: "several contacts in one call, in order",
			patches: []*nudge.ContactPatch{
				{ID: "c2", Email: ptr("bob@example.com")},
				{ID: "c1", Email: ptr("ann@example.com")},
			},
			want: []nudge.ContactMergeResult{
				{Created: true, Contact: &nudge.Contact{ID: "c2", Email: "bob@example.com", CreatedAt: later, UpdatedAt: later}},
				{Created: true, Contact: &nudge.Contact{ID: "c1", Email: "ann@example.com", CreatedAt: later, UpdatedAt: later}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			if tt.before != nil {
				mustMerge(t, s, now, tt.before...)
			}
			got := mustMerge(t, s, later, tt.patches...)
			if d := diff(tt.want, got); d != "" {
				t.Errorf("ContactMerge results (-want +got):\n%s", d)
			}
			// The stored contact is the last result for its id.
			last := map[string]*nudge.Contact{}
			for _, r := range tt.want {
				last[r.Contact.ID] = r.Contact
			}
			for id, want := range last {
				stored := mustGet(t, s, id)
				if d := diff(want, stored); d != "" {
					t.Errorf("ContactGet(%s) after merge (-want +got):\n%s", id, d)
				}
				wantUTC(t, "stored contact", stored.CreatedAt, stored.UpdatedAt)
			}
		})
	}

	t.Run("a patch without id fails the whole call", func(t *testing.T) {
		s := open(t)
		_, err := s.ContactMerge(ctx, []*nudge.ContactPatch{
			{ID: "c1", Email: ptr("ann@example.com")},
			{Email: ptr("bob@example.com")},
		}, now)
		wantCode(t, "ContactMerge with a patch without id", err, nudge.EINVALID)
		_, err = s.ContactGet(ctx, "c1")
		wantCode(t, "ContactGet(c1) after the failed merge", err, nudge.ENOTFOUND)
	})

	t.Run("no patches", func(t *testing.T) {
		s := open(t)
		got, err := s.ContactMerge(ctx, nil, now)
		if err != nil || len(got) != 0 {
			t.Errorf("ContactMerge(nil) = %v, %v; want no results, no error", got, err)
		}
	})
}

func testContactList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	later := now.Add(time.Hour)
	mustPut(t, s, now,
		&nudge.Contact{ID: "a1", Email: "ann@example.com", Phone: "+15550001", LifecycleStage: nudge.StageLead,
			JourneyStage: "trial", Attributes: map[string]any{"plan": "pro", "beta": true, "seats": float64(42)}},
		&nudge.Contact{ID: "a2", Email: "bob@example.com", Phone: "+15550002", LifecycleStage: nudge.StageCustomer,
			JourneyStage: "onboarded", IsCustomer: true, Attributes: map[string]any{"plan": "free", "beta": false, "seats": float64(7)}},
		&nudge.Contact{ID: "a3", Email: "cat@example.com", LifecycleStage: nudge.StageLead,
			JourneyStage: "onboarded", Attributes: map[string]any{"plan": "team", "tags": []any{"pro"}}},
		&nudge.Contact{ID: "a4", LifecycleStage: nudge.StageSubscriber},
	)
	// a4 is updated later than the others.
	mustMerge(t, s, later, &nudge.ContactPatch{ID: "a4", Attributes: map[string]any{"plan": "pro", "score": 4.5}})

	tests := []struct {
		name string
		p    nudge.ContactListParams
		want []string
	}{
		{"no filter", nudge.ContactListParams{}, []string{"a1", "a2", "a3", "a4"}},
		{"email", nudge.ContactListParams{Email: "ann@example.com"}, []string{"a1"}},
		{"phone", nudge.ContactListParams{Phone: "+15550002"}, []string{"a2"}},
		{"lifecycle stage", nudge.ContactListParams{LifecycleStage: nudge.StageLead}, []string{"a1", "a3"}},
		{"journey stage", nudge.ContactListParams{JourneyStage: "onboarded"}, []string{"a2", "a3"}},
		{"is customer", nudge.ContactListParams{IsCustomer: ptr(true)}, []string{"a2"}},
		{"is not customer", nudge.ContactListParams{IsCustomer: ptr(false)}, []string{"a1", "a3", "a4"}},
		{"string attribute", nudge.ContactListParams{Attributes: map[string]string{"plan": "pro"}}, []string{"a1", "a4"}},
		{"bool attribute true", nudge.ContactListParams{Attributes: map[string]string{"beta": "true"}}, []string{"a1"}},
		{"bool attribute false", nudge.ContactListParams{Attributes: map[string]string{"beta": "false"}}, []string{"a2"}},
		{"number attribute", nudge.ContactListParams{Attributes: map[string]string{"seats": "42"}}, []string{"a1"}},
		{"fractional number attribute", nudge.ContactListParams{Attributes: map[string]string{"score": "4.5"}}, []string{"a4"}},
		{"two attributes", nudge.ContactListParams{Attributes: map[string]string{"plan": "pro", "beta": "true"}}, []string{"a1"}},
		{"attribute nobody has", nudge.ContactListParams{Attributes: map[string]string{"region": "emea"}}, []string{}},
		{"attribute value inside an array does not match", nudge.ContactListParams{Attributes: map[string]string{"tags": "pro"}}, []string{}},
		{"updated after", nudge.ContactListParams{UpdatedAfter: now}, []string{"a4"}},
		{"updated after, strictly", nudge.ContactListParams{UpdatedAfter: later}, []string{}},
		{"filters combine", nudge.ContactListParams{LifecycleStage: nudge.StageLead, IsCustomer: ptr(false),
			Attributes: map[string]string{"plan": "pro"}}, []string{"a1"}},
		{"no match", nudge.ContactListParams{Email: "nobody@example.com"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := s.ContactList(ctx, &tt.p)
			if err != nil {
				t.Fatalf("ContactList: %v", err)
			}
			if d := diff(tt.want, contactIDs(page.Contacts)); d != "" {
				t.Errorf("contacts (-want +got):\n%s", d)
			}
			if page.NextCursor != "" {
				t.Errorf("NextCursor = %q on the only page", page.NextCursor)
			}
		})
	}

	t.Run("contacts are whole", func(t *testing.T) {
		page, err := s.ContactList(ctx, &nudge.ContactListParams{Email: "ann@example.com"})
		if err != nil {
			t.Fatalf("ContactList: %v", err)
		}
		if d := diff([]*nudge.Contact{mustGet(t, s, "a1")}, page.Contacts); d != "" {
			t.Errorf("listed contact differs from ContactGet (-get +list):\n%s", d)
		}
	})

	t.Run("a cursor that is not one", func(t *testing.T) {
		_, err := s.ContactList(ctx, &nudge.ContactListParams{Cursor: "!not a cursor!"})
		wantCode(t, "ContactList with a bad cursor", err, nudge.EINVALID)
	})
}

func testContactListPaging(t *testing.T, open func(t *testing.T) nudge.Store) {
	// pages lists every page of p, checking that the last one, and only
	// it, has no cursor.
	pages := func(t *testing.T, s nudge.Store, p nudge.ContactListParams) [][]string {
		t.Helper()
		var out [][]string
		for range 100 {
			page, err := s.ContactList(ctx, &p)
			if err != nil {
				t.Fatalf("ContactList page %d: %v", len(out)+1, err)
			}
			out = append(out, contactIDs(page.Contacts))
			if page.NextCursor == "" {
				return out
			}
			p.Cursor = page.NextCursor
		}
		t.Fatalf("ContactList: more than 100 pages")
		return nil
	}

	t.Run("three pages, no duplicates or gaps", func(t *testing.T) {
		s := open(t)
		var ps []*nudge.ContactPatch
		for _, i := range []int{5, 2, 7, 1, 3, 6, 4} { // not in id order
			ps = append(ps, &nudge.ContactPatch{ID: id("p", i), LifecycleStage: ptr([]string{"lead", "customer"}[i%2])})
		}
		mustMerge(t, s, now, ps...)
		got := pages(t, s, nudge.ContactListParams{Limit: 3})
		want := [][]string{{"p0001", "p0002", "p0003"}, {"p0004", "p0005", "p0006"}, {"p0007"}}
		if d := diff(want, got); d != "" {
			t.Errorf("pages (-want +got):\n%s", d)
		}
		got = pages(t, s, nudge.ContactListParams{Limit: 2, LifecycleStage: "customer"})
		want = [][]string{{"p0001", "p0003"}, {"p0005", "p0007"}}
		if d := diff(want, got); d != "" {
			t.Errorf("filtered pages (-want +got):\n%s", d)
		}
	})

	t.Run("limit default and cap", func(t *testing.T) {
		s := open(t)
		var ps []*nudge.ContactPatch
		for i := range 1001 {
			ps = append(ps, &nudge.ContactPatch{ID: id("c", i)})
		}
		mustMerge(t, s, now, ps...)
		tests := []struct {
			limit      int
			want       int
			wantCursor bool
		}{
			{0, 50, true},
			{-1, 50, true},
			{10, 10, true},
			{1000, 1000, true},
			{5000, 1000, true},
		}
		for _, tt := range tests {
			page, err := s.ContactList(ctx, &nudge.ContactListParams{Limit: tt.limit})
			if err != nil {
				t.Fatalf("ContactList(limit %d): %v", tt.limit, err)
			}
			if len(page.Contacts) != tt.want || (page.NextCursor != "") != tt.wantCursor {
				t.Errorf("ContactList(limit %d): %d contacts, cursor %q; want %d, cursor %v",
					tt.limit, len(page.Contacts), page.NextCursor, tt.want, tt.wantCursor)
			}
		}
		got := pages(t, s, nudge.ContactListParams{Limit: 5000})
		if len(got) != 2 || len(got[0]) != 1000 || len(got[1]) != 1 || got[1][0] != id("c", 1000) {
			t.Errorf("pages of at most 1000: got %d pages", len(got))
		}
	})
}
