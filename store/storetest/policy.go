package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nudge/nudge"
)

// policyStore is a store with the policy's seams and the engine's, whose
// messages count toward caps.
type policyStore interface {
	engineStore
	nudge.PolicyStore
	nudge.PolicyFactStore
}

func openPolicy(t *testing.T, open func(t *testing.T) nudge.Store) policyStore {
	t.Helper()
	s := open(t)
	ps, ok := s.(policyStore)
	if !ok {
		t.Fatalf("%T does not implement nudge.PolicyStore, nudge.PolicyFactStore and the engine's seams", s)
	}
	return ps
}

func mustPolicyPublish(t testing.TB, s policyStore, at time.Time, src, hash string) (*nudge.PolicyVersion, bool) {
	t.Helper()
	v, created, err := s.PolicyPublish(ctx, []byte(src), hash, at)
	if err != nil {
		t.Fatalf("PolicyPublish(%q): %v", src, err)
	}
	return v, created
}

func mustSuppress(t testing.TB, s policyStore, at time.Time, ps ...*nudge.SuppressionAddParams) []*nudge.Suppression {
	t.Helper()
	xs, err := s.SuppressionAdd(ctx, ps, at)
	if err != nil {
		t.Fatalf("SuppressionAdd: %v", err)
	}
	if len(xs) != len(ps) {
		t.Fatalf("SuppressionAdd: %d entries for %d addresses", len(xs), len(ps))
	}
	return xs
}

func mustSuppressions(t testing.TB, s policyStore, p *nudge.SuppressionListParams) []*nudge.Suppression {
	t.Helper()
	xs, err := s.SuppressionList(ctx, p)
	if err != nil {
		t.Fatalf("SuppressionList: %v", err)
	}
	return xs
}

func suppress(channel, address, reason string) *nudge.SuppressionAddParams {
	return &nudge.SuppressionAddParams{Channel: channel, Address: address, Reason: reason, Source: nudge.SourceAPI}
}

func suppressionIDs(xs []*nudge.Suppression) []int64 {
	ids := []int64{}
	for _, x := range xs {
		ids = append(ids, x.ID)
	}
	return ids
}

func testPolicyPublish(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	later := now.Add(time.Hour)

	_, err := s.PolicyGet(ctx, 0)
	wantCode(t, "PolicyGet(latest) of no policy", err, nudge.ENOTFOUND)
	if vs, err := s.PolicyVersionList(ctx); err != nil || len(vs) != 0 {
		t.Fatalf("PolicyVersionList of no policy = %v, %v; want none", vs, err)
	}

	v1, created := mustPolicyPublish(t, s, now, "caps: {}\n", "")
	want1 := &nudge.PolicyVersion{Version: 1, Source: []byte("caps: {}\n"), Hash: sourceHash("caps: {}\n"), PublishedAt: now}
	if d := diff(want1, v1); d != "" || !created {
		t.Errorf("first publish: created %v, version (-want +got):\n%s", created, d)
	}
	wantUTC(t, "published_at", v1.PublishedAt)

	t.Run("the latest source again makes no version", func(t *testing.T) {
		v, created := mustPolicyPublish(t, s, later, "caps: {}\n", sourceHash("caps: {}\n"))
		if d := diff(want1, v); d != "" || created {
			t.Errorf("publish again: created %v, version (-want +got):\n%s", created, d)
		}
	})
	v2, created := mustPolicyPublish(t, s, later, "caps: {sms: 1}\n", sourceHash("caps: {sms: 1}\n"))
	if v2.Version != 2 || !created {
		t.Errorf("second publish: version %d, created %v; want 2, true", v2.Version, created)
	}
	t.Run("a hash that is not the source's", func(t *testing.T) {
		_, _, err := s.PolicyPublish(ctx, []byte("caps: {sms: 2}\n"), sourceHash("something else"), later)
		wantCode(t, "PolicyPublish with a wrong hash", err, nudge.EINVALID)
		_, _, err = s.PolicyPublish(ctx, nil, "", later)
		wantCode(t, "PolicyPublish of no source", err, nudge.EINVALID)
	})
	// An earlier version's source is a new version: publishing rolls back.
	v3, created := mustPolicyPublish(t, s, later.Add(time.Hour), "caps: {}\n", "")
	if v3.Version != 3 || !created || v3.Hash != want1.Hash {
		t.Errorf("publish of version 1's source: version %d, created %v, hash %s; want 3, true, %s",
			v3.Version, created, v3.Hash, want1.Hash)
	}

	t.Run("get", func(t *testing.T) {
		for _, tt := range []struct {
			version int64
			want    *nudge.PolicyVersion
		}{{0, v3}, {1, want1}, {2, v2}, {3, v3}} {
			got, err := s.PolicyGet(ctx, tt.version)
			if err != nil {
				t.Fatalf("PolicyGet(%d): %v", tt.version, err)
			}
			if d := diff(tt.want, got); d != "" {
				t.Errorf("PolicyGet(%d) (-want +got):\n%s", tt.version, d)
			}
			wantUTC(t, "published_at", got.PublishedAt)
		}
		_, err := s.PolicyGet(ctx, 4)
		wantCode(t, "PolicyGet(4)", err, nudge.ENOTFOUND)
	})
	t.Run("list", func(t *testing.T) {
		vs, err := s.PolicyVersionList(ctx)
		if err != nil {
			t.Fatalf("PolicyVersionList: %v", err)
		}
		var want []*nudge.PolicyVersion
		for _, v := range []*nudge.PolicyVersion{want1, v2, v3} {
			w := *v
			w.Source = nil
			want = append(want, &w)
		}
		if d := diff(want, vs); d != "" {
			t.Errorf("PolicyVersionList (-want +got):\n%s", d)
		}
	})
}

// testPolicyPublishConcurrent publishes from several goroutines at once: the
// versions are numbered without gaps or repeats.
func testPolicyPublishConcurrent(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	const n = 8
	var (
		wg   sync.WaitGroup
		got  [n]int64
		errs [n]error
	)
	for i := range n {
		wg.Go(func() {
			v, _, err := s.PolicyPublish(ctx, fmt.Appendf(nil, "caps: {sms: %d}\n", i), "", now)
			if err == nil {
				got[i] = v.Version
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("PolicyPublish %d: %v", i, err)
		}
	}
	vs := got[:]
	slices.Sort(vs)
	if d := diff([]int64{1, 2, 3, 4, 5, 6, 7, 8}, vs); d != "" {
		t.Errorf("versions (-want +got):\n%s", d)
	}
}

func testSuppressionAdd(t *testing.T, open func(t *testing.T) nudge.Store) {
	const sms, email = nudge.ChannelSMS, nudge.ChannelEmail

	t.Run("invalid", func(t *testing.T) {
		s := openPolicy(t, open)
		for _, tt := range []struct {
			name  string
			p     *nudge.SuppressionAddParams
			field string
			valid string // in the message
		}{
			{"a channel", suppress("fax", "+14155552671", nudge.SuppressDoNotContact), "channel", "email, sms"},
			{"a reason", suppress(sms, "+14155552671", "annoyed"), "reason", strings.Join(nudge.SuppressionReasons, ", ")},
			{"a reason of another channel", suppress(sms, "+14155552671", nudge.SuppressHardBounce), "reason", "email"},
			{"a source", &nudge.SuppressionAddParams{Channel: sms, Address: "+14155552671",
				Reason: nudge.SuppressDoNotContact, Source: "rumour"}, "source", "api"},
			{"no address", suppress(email, "  ", nudge.SuppressDoNotContact), "address", ""},
			{"not an email address", suppress(email, "ann.example.com", nudge.SuppressDoNotContact), "address", ""},
			{"not a phone number", suppress(sms, "ann@example.com", nudge.SuppressDoNotContact), "address", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{tt.p}, now)
				wantCode(t, "SuppressionAdd", err, nudge.EINVALID)
				if msg := nudge.ErrorMessage(err); !strings.Contains(msg, tt.field) || !strings.Contains(msg, tt.valid) {
					t.Errorf("error %q does not name the field %q and %q", msg, tt.field, tt.valid)
				}
			})
		}
		t.Run("one invalid address refuses the batch", func(t *testing.T) {
			_, err := s.SuppressionAdd(ctx, []*nudge.SuppressionAddParams{
				suppress(sms, "+14155552671", nudge.SuppressDoNotContact),
				suppress(sms, "+14155552671", "annoyed"),
			}, now)
			wantCode(t, "SuppressionAdd", err, nudge.EINVALID)
			if got := mustSuppressions(t, s, nil); len(got) != 0 {
				t.Errorf("after a refused batch, %d suppressions", len(got))
			}
		})
	})

	t.Run("entries", func(t *testing.T) {
		s := openPolicy(t, open)
		xs := mustSuppress(t, s, now,
			&nudge.SuppressionAddParams{Channel: sms, Address: "+14155552671", Reason: nudge.SuppressDoNotContact,
				Source: nudge.SourceAdmin, Note: "asked on the phone"},
			suppress(email, " Jane.Doe@Example.com ", nudge.SuppressHardBounce),
			suppress(email, "jane.doe@example.com", nudge.SuppressComplaint),
			suppress(sms, "+14155550000", nudge.SuppressProviderOptOut),
		)
		want := []*nudge.Suppression{
			{Channel: sms, AddressMasked: "+1415•••2671", Reason: nudge.SuppressDoNotContact, Source: nudge.SourceAdmin,
				Note: "asked on the phone", CreatedAt: now},
			{Channel: email, AddressMasked: "ja•••@example.com", Reason: nudge.SuppressHardBounce, Source: nudge.SourceAPI, CreatedAt: now},
			{Channel: email, AddressMasked: "ja•••@example.com", Reason: nudge.SuppressComplaint, Source: nudge.SourceAPI, CreatedAt: now},
			{Channel: sms, AddressMasked: "+1415•••0000", Reason: nudge.SuppressProviderOptOut, Source: nudge.SourceAPI, CreatedAt: now},
		}
		ignore := cmpopts.IgnoreFields(nudge.Suppression{}, "ID", "AddressHash")
		if d := diff(want, xs, ignore); d != "" {
			t.Errorf("SuppressionAdd (-want +got):\n%s", d)
		}
		for i, x := range xs {
			wantUTC(t, "created_at", x.CreatedAt)
			if len(x.AddressHash) != 64 || strings.Contains(x.AddressHash, "4155552671") {
				t.Errorf("[%d]: address hash %q is not a hex sha256", i, x.AddressHash)
			}
			if x.ID == 0 || i > 0 && x.ID <= xs[i-1].ID {
				t.Errorf("[%d]: id %d after %d", i, x.ID, xs[max(i-1, 0)].ID)
			}
		}
		if xs[1].AddressHash != xs[2].AddressHash {
			t.Errorf("one email address, written two ways, has hashes %s and %s", xs[1].AddressHash, xs[2].AddressHash)
		}
		if xs[0].AddressHash == xs[3].AddressHash {
			t.Errorf("two phone numbers have one hash")
		}
		if d := diff(xs, mustSuppressions(t, s, nil)); d != "" {
			t.Errorf("SuppressionList (-want +got):\n%s", d)
		}

		t.Run("an address already suppressed for the reason is left as it is", func(t *testing.T) {
			again := mustSuppress(t, s, now.Add(time.Hour),
				&nudge.SuppressionAddParams{Channel: email, Address: "JANE.DOE@example.com", Reason: nudge.SuppressHardBounce,
					Source: nudge.SourceProvider, Note: "bounced again"},
				suppress(sms, "+14155552671", nudge.SuppressUnreachable),
				suppress(sms, "+14155552671", nudge.SuppressUnreachable),
			)
			if d := diff(xs[1], again[0]); d != "" {
				t.Errorf("an existing entry (-want +got):\n%s", d)
			}
			if again[1].ID <= xs[3].ID || again[1].AddressHash != xs[0].AddressHash || !again[1].CreatedAt.Equal(now.Add(time.Hour)) {
				t.Errorf("a new reason for a suppressed address: %+v", again[1])
			}
			if d := diff(again[1], again[2]); d != "" {
				t.Errorf("one address twice in a batch (-first +second):\n%s", d)
			}
			if got := mustSuppressions(t, s, nil); len(got) != 5 {
				t.Errorf("%d suppressions, want 5", len(got))
			}
		})
	})
}

func testSuppressionRemove(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	const sms, email = nudge.ChannelSMS, nudge.ChannelEmail
	xs := mustSuppress(t, s, now,
		suppress(sms, "+14155552671", nudge.SuppressDoNotContact),
		suppress(sms, "+14155552671", nudge.SuppressProviderOptOut),
		suppress(email, "ann@example.com", nudge.SuppressHardBounce),
		suppress(sms, "+14155550000", nudge.SuppressDoNotContact),
	)
	err := s.SuppressionRemove(ctx, email, "+14155552671")
	wantCode(t, "SuppressionRemove of a phone number as an email address", err, nudge.EINVALID)
	err = s.SuppressionRemove(ctx, email, "bob@example.com")
	wantCode(t, "SuppressionRemove of an address not suppressed", err, nudge.ENOTFOUND)
	err = s.SuppressionRemove(ctx, "fax", "+14155552671")
	wantCode(t, "SuppressionRemove of channel fax", err, nudge.EINVALID)

	if err := s.SuppressionRemove(ctx, sms, " +14155552671"); err != nil {
		t.Fatalf("SuppressionRemove: %v", err)
	}
	if d := diff([]int64{xs[2].ID, xs[3].ID}, suppressionIDs(mustSuppressions(t, s, nil))); d != "" {
		t.Errorf("after removing a number, its reasons are gone (-want +got):\n%s", d)
	}
	err = s.SuppressionRemove(ctx, sms, "+14155552671")
	wantCode(t, "SuppressionRemove again", err, nudge.ENOTFOUND)
	if err := s.SuppressionRemove(ctx, email, "Ann@Example.com"); err != nil {
		t.Fatalf("SuppressionRemove(email): %v", err)
	}
	if d := diff([]int64{xs[3].ID}, suppressionIDs(mustSuppressions(t, s, nil))); d != "" {
		t.Errorf("after removing an email address (-want +got):\n%s", d)
	}
}

func testSuppressionList(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	var ps []*nudge.SuppressionAddParams
	for i := range 8 {
		if i%3 == 2 {
			ps = append(ps, suppress(nudge.ChannelEmail, fmt.Sprintf("user%d@example.com", i), nudge.SuppressComplaint))
		} else {
			ps = append(ps, suppress(nudge.ChannelSMS, fmt.Sprintf("+1415555%04d", i), nudge.SuppressDoNotContact))
		}
	}
	xs := mustSuppress(t, s, now, ps...)
	ids := func(keep func(i int) bool) []int64 {
		out := []int64{}
		for i, x := range xs {
			if keep(i) {
				out = append(out, x.ID)
			}
		}
		return out
	}
	for _, tt := range []struct {
		name string
		p    *nudge.SuppressionListParams
		want []int64
	}{
		{"all, by id", nil, ids(func(int) bool { return true })},
		{"by channel", &nudge.SuppressionListParams{Channel: nudge.ChannelEmail}, ids(func(i int) bool { return i%3 == 2 })},
		{"a page", &nudge.SuppressionListParams{AfterID: xs[2].ID, Limit: 2}, ids(func(i int) bool { return i == 3 || i == 4 })},
		{"a filtered page", &nudge.SuppressionListParams{Channel: nudge.ChannelSMS, AfterID: xs[1].ID, Limit: 3},
			ids(func(i int) bool { return i == 3 || i == 4 || i == 6 })},
		{"past the end", &nudge.SuppressionListParams{AfterID: xs[7].ID}, []int64{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := diff(tt.want, suppressionIDs(mustSuppressions(t, s, tt.p))); d != "" {
				t.Errorf("SuppressionList (-want +got):\n%s", d)
			}
		})
	}
	t.Run("an unknown channel", func(t *testing.T) {
		_, err := s.SuppressionList(ctx, &nudge.SuppressionListParams{Channel: "fax"})
		wantCode(t, "SuppressionList(fax)", err, nudge.EINVALID)
	})
}

func testSuppressionsFor(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	cs := []*nudge.Contact{
		{ID: "c1", Email: "ann@example.com", Phone: "+14155552671"},
		{ID: "c2", Phone: "+14155552671"}, // c1's number
		{ID: "c3"},
		{ID: "c4", Email: "bob@example.com", Phone: "+14155550000"},
		{ID: "c5", Email: "+14155552671@example.com"},
	}
	mustPut(t, s, now, cs...)
	xs := mustSuppress(t, s, now,
		suppress(nudge.ChannelSMS, "+14155552671", nudge.SuppressProviderOptOut),
		suppress(nudge.ChannelEmail, "ANN@example.com", nudge.SuppressHardBounce),
		suppress(nudge.ChannelSMS, "+14155552671", nudge.SuppressUnreachable),
		suppress(nudge.ChannelEmail, "carol@example.com", nudge.SuppressComplaint),
	)
	got, err := s.SuppressionsFor(ctx, cs)
	if err != nil {
		t.Fatalf("SuppressionsFor: %v", err)
	}
	want := map[string][]*nudge.Suppression{
		"c1": {xs[0], xs[1], xs[2]},
		"c2": {xs[0], xs[2]},
	}
	if d := diff(want, got); d != "" {
		t.Errorf("SuppressionsFor (-want +got):\n%s", d)
	}
	t.Run("no contacts", func(t *testing.T) {
		got, err := s.SuppressionsFor(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("SuppressionsFor(nil) = %v, %v; want none", got, err)
		}
	})
}

// testSuppressionErase checks that a suppression belongs to the address:
// erasing its contact leaves it, and it applies to the next holder.
func testSuppressionErase(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	mustPut(t, s, now, &nudge.Contact{ID: "c1", Email: "ann@example.com", Phone: "+14155552671"})
	xs := mustSuppress(t, s, now,
		suppress(nudge.ChannelSMS, "+14155552671", nudge.SuppressDoNotContact),
		suppress(nudge.ChannelEmail, "ann@example.com", nudge.SuppressComplaint),
	)
	if err := s.ContactErase(ctx, "c1", now.Add(time.Hour)); err != nil {
		t.Fatalf("ContactErase: %v", err)
	}
	if d := diff(xs, mustSuppressions(t, s, nil)); d != "" {
		t.Errorf("suppressions after erasure (-want +got):\n%s", d)
	}
	next := &nudge.Contact{ID: "c2", Phone: "+14155552671"}
	mustPut(t, s, now.Add(2*time.Hour), next)
	got, err := s.SuppressionsFor(ctx, []*nudge.Contact{next})
	if err != nil {
		t.Fatalf("SuppressionsFor: %v", err)
	}
	if d := diff(map[string][]*nudge.Suppression{"c2": {xs[0]}}, got); d != "" {
		t.Errorf("the number's next holder (-want +got):\n%s", d)
	}
}

func testConsentListMany(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	consentContacts(t, s)
	mustPut(t, s, now, &nudge.Contact{ID: "c5", Email: "eve@example.com"}, &nudge.Contact{ID: "c6"})
	mustRecord(t, s, now.Add(-10*time.Minute),
		change("c1", nudge.ChannelSMS, nudge.ConsentOptedIn, nudge.SourceForm),
		change("c1", nudge.ChannelEmail, nudge.ConsentOptedIn, nudge.SourceForm),
		&nudge.ConsentRecordParams{ContactID: "c1", Channel: nudge.ChannelSMS, Purpose: nudge.PurposeTransactional,
			Status: nudge.ConsentOptedIn, Source: nudge.SourceAPI},
		change("c2", nudge.ChannelEmail, nudge.ConsentOptedOut, nudge.SourceAPI),
	)
	mustRecord(t, s, now, change("c3", nudge.ChannelSMS, nudge.ConsentOptedOut, nudge.SourceKeyword))

	ids := []string{"c1", "c2", "nobody", "c3", "c4", "c5", "c6", "c1"}
	got, err := s.ConsentListMany(ctx, ids)
	if err != nil {
		t.Fatalf("ConsentListMany: %v", err)
	}
	want := map[string][]*nudge.ConsentState{}
	for _, id := range ids {
		ss, err := s.ConsentList(ctx, id)
		if nudge.ErrorCode(err) == nudge.ENOTFOUND {
			continue
		}
		if err != nil {
			t.Fatalf("ConsentList(%s): %v", id, err)
		}
		want[id] = sortStates(ss)
	}
	for id, ss := range got {
		got[id] = sortStates(ss)
		for _, st := range ss {
			wantUTC(t, "updated_at", st.UpdatedAt)
		}
	}
	if d := diff(want, got); d != "" {
		t.Errorf("ConsentListMany (-want ConsentList of each +got):\n%s", d)
	}
	if len(want["c1"]) != 3 || len(want["c3"]) != 2 || len(want["c4"]) != 1 {
		t.Errorf("the fixture's states are not what the test means: %d, %d, %d", len(want["c1"]), len(want["c3"]), len(want["c4"]))
	}
	for _, id := range []string{"c5", "c6"} {
		if ss, ok := got[id]; !ok || len(ss) != 0 {
			t.Errorf("a contact with no consent recorded: %v, %v; want present and empty", ss, ok)
		}
	}
	if _, ok := got["nobody"]; ok {
		t.Errorf("an unknown contact has an entry")
	}
	t.Run("no contacts", func(t *testing.T) {
		got, err := s.ConsentListMany(ctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("ConsentListMany(nil) = %v, %v; want none", got, err)
		}
	})
}

func testMessageRecent(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := openPolicy(t, open)
	mustPublish(t, s, now, "j", "id: j\n")
	mustPut(t, s, now, &nudge.Contact{ID: "c1", Phone: "+14155552671"}, &nudge.Contact{ID: "c2"}, &nudge.Contact{ID: "c3"})
	es := map[string]*nudge.Enrollment{}
	for _, c := range []string{"c1", "c2", "c3"} {
		es[c] = waiting("e-"+c, "j", c, now.Add(24*time.Hour))
	}
	mustCommit(t, s, now.Add(-5*time.Hour), &nudge.EngineCommit{Enrollments: []*nudge.Enrollment{es["c1"], es["c2"], es["c3"]}})
	// Messages are created when they are committed. Their ids fall as
	// time goes on, so an order by id rather than by time would show.
	commits := []struct {
		ago      time.Duration
		contact  string
		statuses []string
	}{
		{4 * time.Hour, "c1", []string{nudge.MessageSent}},
		{3 * time.Hour, "c2", []string{nudge.MessageDelivered}},
		{3 * time.Hour, "c1", []string{nudge.MessageDelivered, nudge.MessageFailed}},
		{2 * time.Hour, "c2", []string{nudge.MessageCancelled, nudge.MessageSending}},
		{time.Hour, "c1", []string{nudge.MessageQueued}},
		{0, "c1", []string{nudge.MessageSending}},
	}
	n := 100
	for _, c := range commits {
		var ms []*nudge.Message
		for _, st := range c.statuses {
			n--
			m := message(id("msg", n), es[c.contact], id("s", n))
			m.Channel, m.Status = nudge.ChannelSMS, st
			ms = append(ms, m)
		}
		mustCommit(t, s, now.Add(-c.ago), &nudge.EngineCommit{Messages: ms})
	}
	// They come without what caps do not read.
	all := map[string]*nudge.Message{}
	for _, m := range mustMessages(t, s, &nudge.MessageListParams{Limit: 1000}) {
		m.IdempotencyKey, m.Details, m.ProviderID, m.Attempts, m.Error = "", nil, "", 0, ""
		all[m.ID] = m
	}
	pick := func(ids ...int) []*nudge.Message {
		var ms []*nudge.Message
		for _, i := range ids {
			ms = append(ms, all[id("msg", i)])
		}
		return ms
	}
	for _, tt := range []struct {
		name  string
		ids   []string
		since time.Time
		want  map[string][]*nudge.Message
	}{
		{"all that count, oldest first", []string{"c1", "c2", "c3", "nobody"}, now.Add(-24 * time.Hour),
			map[string][]*nudge.Message{"c1": pick(99, 97, 93, 92), "c2": pick(98, 94)}},
		{"since a time, inclusive", []string{"c1", "c2"}, now.Add(-3 * time.Hour),
			map[string][]*nudge.Message{"c1": pick(97, 93, 92), "c2": pick(98, 94)}},
		{"of one contact", []string{"c2"}, now.Add(-150 * time.Minute),
			map[string][]*nudge.Message{"c2": pick(94)}},
		{"none", []string{"c3"}, now.Add(-24 * time.Hour), map[string][]*nudge.Message{}},
		{"no contacts", nil, now.Add(-24 * time.Hour), map[string][]*nudge.Message{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.MessageRecent(ctx, tt.ids, tt.since)
			if err != nil {
				t.Fatalf("MessageRecent: %v", err)
			}
			if d := diff(tt.want, got); d != "" {
				t.Errorf("MessageRecent (-want +got):\n%s", d)
			}
		})
	}
}
