package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testWebhook(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	a := &nudge.WebhookSubscription{ID: "wh_a", URL: "https://crm.example.com/hook",
		Events: []string{nudge.WebhookMessageSent, nudge.WebhookMessageFailed}, Secret: "s3cret", CreatedAt: now}
	b := &nudge.WebhookSubscription{ID: "wh_b", URL: "http://other.example.com/x?y=1",
		Events: []string{nudge.WebhookEnrollmentConverted}, Secret: "other", CreatedAt: now.Add(time.Second)}
	for _, w := range []*nudge.WebhookSubscription{b, a} {
		if err := s.WebhookCreate(ctx, w); err != nil {
			t.Fatalf("WebhookCreate(%s): %v", w.ID, err)
		}
	}

	t.Run("Invalid", func(t *testing.T) {
		for name, w := range map[string]*nudge.WebhookSubscription{
			"NoID":         {URL: "https://x.io", Events: []string{nudge.WebhookMessageSent}, Secret: "s"},
			"BadURL":       {ID: "x", URL: "ftp://x.io", Events: []string{nudge.WebhookMessageSent}, Secret: "s"},
			"NoEvents":     {ID: "x", URL: "https://x.io", Secret: "s"},
			"UnknownEvent": {ID: "x", URL: "https://x.io", Events: []string{"message.exploded"}, Secret: "s"},
			"NoSecret":     {ID: "x", URL: "https://x.io", Events: []string{nudge.WebhookMessageSent}},
		} {
			t.Run(name, func(t *testing.T) {
				wantCode(t, "WebhookCreate", s.WebhookCreate(ctx, w), nudge.EINVALID)
			})
		}
	})
	t.Run("Conflict", func(t *testing.T) {
		dup := *a
		wantCode(t, "WebhookCreate", s.WebhookCreate(ctx, &dup), nudge.ECONFLICT)
	})
	t.Run("Get", func(t *testing.T) {
		got, err := s.WebhookGet(ctx, a.ID)
		if err != nil {
			t.Fatalf("WebhookGet: %v", err)
		}
		if d := diff(a, got); d != "" {
			t.Errorf("WebhookGet (-want +got):\n%s", d)
		}
		wantUTC(t, "WebhookGet", got.CreatedAt)
		_, err = s.WebhookGet(ctx, "nope")
		wantCode(t, "WebhookGet", err, nudge.ENOTFOUND)
	})
	t.Run("List", func(t *testing.T) {
		got, err := s.WebhookList(ctx)
		if err != nil {
			t.Fatalf("WebhookList: %v", err)
		}
		if d := diff([]*nudge.WebhookSubscription{a, b}, got); d != "" {
			t.Errorf("WebhookList (-want +got):\n%s", d)
		}
	})
	t.Run("DeliveryLog", func(t *testing.T) {
		ds := []*nudge.WebhookDelivery{
			{SubscriptionID: a.ID, EventID: "m1:sent", Event: nudge.WebhookMessageSent, Attempt: 1, StatusCode: 500,
				Error: "500 Internal Server Error", Duration: 12, NextAttemptAt: now.Add(10 * time.Second), At: now},
			{SubscriptionID: a.ID, EventID: "m1:sent", Event: nudge.WebhookMessageSent, Attempt: 2, StatusCode: 204,
				OK: true, Duration: 3, At: now.Add(10 * time.Second)},
			{SubscriptionID: b.ID, EventID: "e1:converted", Event: nudge.WebhookEnrollmentConverted, Attempt: 1,
				Error: "blocked_address", At: now},
			{SubscriptionID: "gone", EventID: "x", Event: nudge.WebhookMessageSent, Attempt: 1, At: now},
		}
		if err := s.WebhookDeliveryLog(ctx, ds); err != nil {
			t.Fatalf("WebhookDeliveryLog: %v", err)
		}
		if ds[0].ID == 0 || ds[1].ID <= ds[0].ID {
			t.Errorf("IDs %d, %d: want set and growing", ds[0].ID, ds[1].ID)
		}
		if ds[3].ID != 0 {
			t.Errorf("an attempt of an unknown subscription was logged (id %d)", ds[3].ID)
		}
		got, err := s.WebhookDeliveryList(ctx, &nudge.WebhookDeliveryListParams{SubscriptionID: a.ID})
		if err != nil {
			t.Fatalf("WebhookDeliveryList: %v", err)
		}
		if d := diff([]*nudge.WebhookDelivery{ds[1], ds[0]}, got); d != "" {
			t.Errorf("WebhookDeliveryList (-want +got):\n%s", d)
		}
		for _, d := range got {
			wantUTC(t, "WebhookDeliveryList", d.At)
		}
		page, err := s.WebhookDeliveryList(ctx, &nudge.WebhookDeliveryListParams{SubscriptionID: a.ID, BeforeID: ds[1].ID, Limit: 5})
		if err != nil {
			t.Fatalf("WebhookDeliveryList before: %v", err)
		}
		if d := diff([]*nudge.WebhookDelivery{ds[0]}, page); d != "" {
			t.Errorf("WebhookDeliveryList before (-want +got):\n%s", d)
		}
		one, err := s.WebhookDeliveryList(ctx, &nudge.WebhookDeliveryListParams{SubscriptionID: a.ID, Limit: 1})
		if err != nil || len(one) != 1 || one[0].ID != ds[1].ID {
			t.Errorf("WebhookDeliveryList limit 1: %v, %v", one, err)
		}
	})
	t.Run("Pending", func(t *testing.T) {
		ps := []*nudge.WebhookPending{
			{SubscriptionID: a.ID, EventID: "m1:sent", Event: nudge.WebhookMessageSent, Body: []byte(`{"id":"m1:sent"}`)},
			{SubscriptionID: b.ID, EventID: "e1:converted", Event: nudge.WebhookEnrollmentConverted, Body: []byte(`{}`), AvailableAt: now.Add(time.Minute)},
			{SubscriptionID: "wh_gone", EventID: "m1:sent", Event: nudge.WebhookMessageSent, Body: []byte(`{}`)},
		}
		if err := s.WebhookEnqueue(ctx, ps, now); err != nil {
			t.Fatalf("WebhookEnqueue: %v", err)
		}
		if ps[0].ID == 0 || ps[1].ID == 0 || ps[2].ID != 0 {
			t.Errorf("IDs %d %d %d; want two set, none for a subscription that does not exist", ps[0].ID, ps[1].ID, ps[2].ID)
		}
		// The same event again is kept once.
		again := &nudge.WebhookPending{SubscriptionID: a.ID, EventID: "m1:sent", Event: nudge.WebhookMessageSent, Body: []byte(`{}`)}
		if err := s.WebhookEnqueue(ctx, []*nudge.WebhookPending{again}, now); err != nil || again.ID != 0 {
			t.Errorf("WebhookEnqueue of a pending event: id %d, %v; want kept once", again.ID, err)
		}

		got, err := s.WebhookClaim(ctx, now, 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("WebhookClaim at now = %+v, %v; want the due one", got, err)
		}
		p := got[0]
		if p.EventID != "m1:sent" || string(p.Body) != `{"id":"m1:sent"}` || p.URL != a.URL || p.Secret != a.Secret || p.Attempt != 0 || !p.AvailableAt.Equal(now) {
			t.Errorf("claimed %+v; want m1:sent with its body and the subscription's URL and secret", p)
		}
		if again, _ := s.WebhookClaim(ctx, now.Add(time.Second), 10, time.Minute); len(again) != 0 {
			t.Errorf("claimed twice: %+v", again)
		}
		// A retry: released for its next attempt.
		next := now.Add(30 * time.Second)
		if err := s.WebhookSettle(ctx, []*nudge.WebhookSettle{{ID: p.ID, Attempt: 1, AvailableAt: next}}, now); err != nil {
			t.Fatalf("WebhookSettle: %v", err)
		}
		if got, _ := s.WebhookClaim(ctx, next.Add(-time.Millisecond), 10, time.Minute); len(got) != 0 {
			t.Errorf("claimed before its retry time: %+v", got)
		}
		got, err = s.WebhookClaim(ctx, next.Add(time.Minute), 10, time.Minute)
		if err != nil || len(got) != 2 || got[0].EventID != "m1:sent" || got[0].Attempt != 1 || got[1].EventID != "e1:converted" {
			t.Fatalf("WebhookClaim after the retry time = %+v, %v; want m1:sent (1 attempt made), then e1:converted", got, err)
		}
		// A claim that expires (the process stopped) is claimed again.
		if got, _ := s.WebhookClaim(ctx, next.Add(3*time.Minute), 10, time.Minute); len(got) != 2 {
			t.Errorf("after the claim expired: %d claimed; want 2", len(got))
		}
		if err := s.WebhookSettle(ctx, []*nudge.WebhookSettle{{ID: got[0].ID, Done: true}, {ID: got[1].ID, Done: true}}, now); err != nil {
			t.Fatalf("WebhookSettle done: %v", err)
		}
		if got, _ := s.WebhookClaim(ctx, next.Add(time.Hour), 10, time.Minute); len(got) != 0 {
			t.Errorf("done deliveries claimed: %+v", got)
		}
		// Deleting a subscription drops what was pending for it.
		if err := s.WebhookEnqueue(ctx, []*nudge.WebhookPending{{SubscriptionID: a.ID, EventID: "m2:sent", Event: nudge.WebhookMessageSent, Body: []byte(`{}`)}}, now); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if err := s.WebhookDelete(ctx, a.ID); err != nil {
			t.Fatalf("WebhookDelete: %v", err)
		}
		wantCode(t, "WebhookDelete again", s.WebhookDelete(ctx, a.ID), nudge.ENOTFOUND)
		_, err := s.WebhookGet(ctx, a.ID)
		wantCode(t, "WebhookGet", err, nudge.ENOTFOUND)
		got, err := s.WebhookDeliveryList(ctx, &nudge.WebhookDeliveryListParams{SubscriptionID: a.ID})
		if err != nil || len(got) != 0 {
			t.Errorf("the deleted subscription's log: %v, %v; want empty", got, err)
		}
		left, err := s.WebhookList(ctx)
		if err != nil || len(left) != 1 || left[0].ID != b.ID {
			t.Errorf("WebhookList after delete: %v, %v", left, err)
		}
		if got, err := s.WebhookClaim(ctx, now.Add(24*time.Hour), 10, time.Minute); err != nil || len(got) != 0 {
			t.Errorf("pending deliveries of the deleted subscription: %+v, %v; want none", got, err)
		}
	})
}
