// Package storetest is the conformance suite every nudge.Store must pass.
//
// A store's own tests call Run with a function that opens a fresh, migrated,
// empty store for each subtest:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) nudge.Store { return nudgetest.SQLite(t) })
//	}
//
// The suite speaks only through nudge.Store: no SQL, no knowledge of a
// particular database. What it checks is what the rest of Nudge may rely on;
// a behaviour it does not pin down is one callers must not depend on. Times
// are compared at microsecond precision, the precision both databases keep,
// and must come back in UTC. Numbers in attribute and property maps come back
// as float64, as encoding/json decodes them.
//
// The journey, engine and policy cases reach their seams through
// assertions written when nudge.Store did not embed them yet; a store that
// lacks one fails those cases rather than skipping them.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
)

// Run runs the whole suite. open must return a fresh, migrated, empty store
// and register its own cleanup.
func Run(t *testing.T, open func(t *testing.T) nudge.Store) {
	t.Helper()
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, open) })
	t.Run("ContactPut", func(t *testing.T) { testContactPut(t, open) })
	t.Run("ContactGet", func(t *testing.T) { testContactGet(t, open) })
	t.Run("ContactMerge", func(t *testing.T) { testContactMerge(t, open) })
	t.Run("ContactMergeProperty", func(t *testing.T) { testContactMergeProperty(t, open) })
	t.Run("ContactList", func(t *testing.T) { testContactList(t, open) })
	t.Run("ContactListPaging", func(t *testing.T) { testContactListPaging(t, open) })
	t.Run("EventIngest", func(t *testing.T) { testEventIngest(t, open) })
	t.Run("EventRoundTrip", func(t *testing.T) { testEventRoundTrip(t, open) })
	t.Run("EventList", func(t *testing.T) { testEventList(t, open) })
	t.Run("EventPrune", func(t *testing.T) { testEventPrune(t, open) })
	t.Run("ConsentRecord", func(t *testing.T) { testConsentRecord(t, open) })
	t.Run("ConsentList", func(t *testing.T) { testConsentList(t, open) })
	t.Run("ConsentLedger", func(t *testing.T) { testConsentLedger(t, open) })
	t.Run("ConsentByAddress", func(t *testing.T) { testConsentByAddress(t, open) })
	t.Run("ContactErase", func(t *testing.T) { testContactErase(t, open) })
	t.Run("APIKey", func(t *testing.T) { testAPIKey(t, open) })
	t.Run("User", func(t *testing.T) { testUser(t, open) })
	t.Run("JourneyPublish", func(t *testing.T) { testJourneyPublish(t, open) })
	t.Run("JourneyStatus", func(t *testing.T) { testJourneyStatus(t, open) })
	t.Run("JourneyList", func(t *testing.T) { testJourneyList(t, open) })
	t.Run("Inbox", func(t *testing.T) { testInbox(t, open) })
	t.Run("InboxClaim", func(t *testing.T) { testInboxClaim(t, open) })
	t.Run("EngineCommit", func(t *testing.T) { testEngineCommit(t, open) })
	t.Run("EnrollmentClaimDue", func(t *testing.T) { testEnrollmentClaimDue(t, open) })
	t.Run("EnrollmentList", func(t *testing.T) { testEnrollmentList(t, open) })
	t.Run("EnrollmentListLive", func(t *testing.T) { testEnrollmentListLive(t, open) })
	t.Run("ContactListDates", func(t *testing.T) { testContactListDates(t, open) })
	t.Run("DecisionList", func(t *testing.T) { testDecisionList(t, open) })
	t.Run("MessageList", func(t *testing.T) { testMessageList(t, open) })
	t.Run("MessageLog", func(t *testing.T) { testMessageLog(t, open) })
	t.Run("ProviderStatus", func(t *testing.T) { testProviderStatus(t, open) })
	t.Run("EngineErase", func(t *testing.T) { testEngineErase(t, open) })
	t.Run("ClaimConcurrent", func(t *testing.T) { testClaimConcurrent(t, open) })
	t.Run("PolicyPublish", func(t *testing.T) { testPolicyPublish(t, open) })
	t.Run("PolicyPublishConcurrent", func(t *testing.T) { testPolicyPublishConcurrent(t, open) })
	t.Run("SuppressionAdd", func(t *testing.T) { testSuppressionAdd(t, open) })
	t.Run("SuppressionRemove", func(t *testing.T) { testSuppressionRemove(t, open) })
	t.Run("SuppressionList", func(t *testing.T) { testSuppressionList(t, open) })
	t.Run("SuppressionsFor", func(t *testing.T) { testSuppressionsFor(t, open) })
	t.Run("SuppressionErase", func(t *testing.T) { testSuppressionErase(t, open) })
	t.Run("ConsentListMany", func(t *testing.T) { testConsentListMany(t, open) })
	t.Run("MessageRecent", func(t *testing.T) { testMessageRecent(t, open) })
	t.Run("MessageClaim", func(t *testing.T) { testMessageClaim(t, open) })
	t.Run("MessageUpdate", func(t *testing.T) { testMessageUpdate(t, open) })
	t.Run("MessageLookup", func(t *testing.T) { testMessageLookup(t, open) })
	t.Run("MessageStuck", func(t *testing.T) { testMessageStuck(t, open) })
	t.Run("MessageSMSSegments", func(t *testing.T) { testMessageSMSSegments(t, open) })
	t.Run("MessageCancel", func(t *testing.T) { testMessageCancel(t, open) })
	t.Run("Report", func(t *testing.T) { testReport(t, open) })
	t.Run("StepPause", func(t *testing.T) { testStepPause(t, open) })
	t.Run("ReportStages", func(t *testing.T) { testReportStages(t, open) })
	t.Run("ReportCounts", func(t *testing.T) { testReportCounts(t, open) })
	t.Run("EnginePrior", func(t *testing.T) { testEnginePrior(t, open) })
	t.Run("Link", func(t *testing.T) { testLink(t, open) })
	t.Run("Webhook", func(t *testing.T) { testWebhook(t, open) })
	t.Run("RateSlots", func(t *testing.T) { testRateSlots(t, open) })
}

// now is the fixed time every test starts from.
var now = nudgetest.Epoch

var ctx = context.Background()

func ptr[T any](v T) *T { return &v }

// opts are the go-cmp options of every comparison: times equal to the
// microsecond, nil and empty maps and slices alike.
var opts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool {
		d := a.Sub(b)
		return d > -time.Microsecond && d < time.Microsecond
	}),
}

func diff(want, got any, more ...cmp.Option) string {
	return cmp.Diff(want, got, append(cmp.Options{opts}, more...)...)
}

// wantCode fails the test unless err has the given code ("" for nil).
func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if got := nudge.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

// wantUTC fails the test if a time is not in UTC.
func wantUTC(t testing.TB, what string, ts ...time.Time) {
	t.Helper()
	for _, x := range ts {
		if x.Location() != time.UTC {
			t.Errorf("%s: time %v is in %v, want UTC", what, x, x.Location())
		}
	}
}

func mustPut(t testing.TB, s nudge.Store, at time.Time, cs ...*nudge.Contact) {
	t.Helper()
	for _, c := range cs {
		if _, _, err := s.ContactPut(ctx, c, at); err != nil {
			t.Fatalf("ContactPut(%s): %v", c.ID, err)
		}
	}
}

func mustMerge(t testing.TB, s nudge.Store, at time.Time, ps ...*nudge.ContactPatch) []nudge.ContactMergeResult {
	t.Helper()
	rs, err := s.ContactMerge(ctx, ps, at)
	if err != nil {
		t.Fatalf("ContactMerge: %v", err)
	}
	return rs
}

func mustGet(t testing.TB, s nudge.Store, id string) *nudge.Contact {
	t.Helper()
	c, err := s.ContactGet(ctx, id)
	if err != nil {
		t.Fatalf("ContactGet(%s): %v", id, err)
	}
	return c
}

func mustIngest(t testing.TB, s nudge.Store, at time.Time, items ...nudge.IngestItem) []bool {
	t.Helper()
	r, err := s.EventIngest(ctx, items, at)
	if err != nil {
		t.Fatalf("EventIngest: %v", err)
	}
	if len(r.Duplicate) != len(items) {
		t.Fatalf("EventIngest: %d results for %d items", len(r.Duplicate), len(items))
	}
	return r.Duplicate
}

func mustRecord(t testing.TB, s nudge.Store, at time.Time, ps ...*nudge.ConsentRecordParams) []*nudge.ConsentEntry {
	t.Helper()
	rs, err := s.ConsentRecord(ctx, ps, at)
	if err != nil {
		t.Fatalf("ConsentRecord: %v", err)
	}
	if len(rs) != len(ps) {
		t.Fatalf("ConsentRecord: %d results for %d changes", len(rs), len(ps))
	}
	var es []*nudge.ConsentEntry
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("ConsentRecord: [%d]: %v", i, r.Err)
		}
		es = append(es, r.Entry)
	}
	return es
}

func contactIDs(cs []*nudge.Contact) []string {
	ids := []string{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func messageIDs(es []*nudge.Event) []string {
	ids := []string{}
	for _, e := range es {
		ids = append(ids, e.MessageID)
	}
	return ids
}

func entryIDs(es []*nudge.ConsentEntry) []int64 {
	ids := []int64{}
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return ids
}

// sortStates orders consent states by channel and purpose: the interface
// does not promise an order.
func sortStates(ss []*nudge.ConsentState) []*nudge.ConsentState {
	ss = slices.Clone(ss)
	slices.SortFunc(ss, func(a, b *nudge.ConsentState) int {
		return strings.Compare(a.Channel+"/"+a.Purpose, b.Channel+"/"+b.Purpose)
	})
	return ss
}

func testMigrate(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	mustPut(t, s, now, &nudge.Contact{ID: "c1", Email: "ann@example.com"})
	for i := range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again (%d): %v", i+1, err)
		}
	}
	if got := mustGet(t, s, "c1"); got.Email != "ann@example.com" {
		t.Errorf("after Migrate again, contact email %q, want ann@example.com", got.Email)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after Migrate: %v", err)
	}
}

// name makes subtest-friendly numbered ids: id("c", 7) is "c0007".
func id(prefix string, i int) string { return fmt.Sprintf("%s%04d", prefix, i) }
