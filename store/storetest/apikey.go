package storetest

import (
	"testing"
	"time"

	"github.com/nudge/nudge"
)

func testAPIKey(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	if got, err := s.APIKeyList(ctx); err != nil || len(got) != 0 {
		t.Fatalf("APIKeyList on an empty store = %v, %v; want none", got, err)
	}
	admin, adminToken := nudge.NewAPIKey(nudge.RoleAdmin, "deploy", now)
	ingest, _ := nudge.NewAPIKey(nudge.RoleIngest, "segment", now.Add(time.Minute))
	read, _ := nudge.NewAPIKey(nudge.RoleRead, "dashboard", now.Add(-time.Minute))
	for _, k := range []*nudge.APIKey{admin, ingest, read} {
		if err := s.APIKeyCreate(ctx, k); err != nil {
			t.Fatalf("APIKeyCreate(%s): %v", k.Name, err)
		}
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.APIKeyGet(ctx, admin.ID)
		if err != nil {
			t.Fatalf("APIKeyGet: %v", err)
		}
		if d := diff(admin, got); d != "" {
			t.Errorf("APIKeyGet (-want +got):\n%s", d)
		}
		wantUTC(t, "key", got.CreatedAt)
		id, secret, ok := nudge.ParseAPIToken(adminToken)
		if !ok || id != admin.ID {
			t.Fatalf("ParseAPIToken(%q) = %q, _, %v", adminToken, id, ok)
		}
		if !got.Verify(secret) {
			t.Errorf("stored key does not verify its token's secret")
		}
		if got.Verify(secret + "x") {
			t.Errorf("stored key verifies a wrong secret")
		}
	})

	t.Run("list, oldest first", func(t *testing.T) {
		got, err := s.APIKeyList(ctx)
		if err != nil {
			t.Fatalf("APIKeyList: %v", err)
		}
		if d := diff([]*nudge.APIKey{read, admin, ingest}, got); d != "" {
			t.Errorf("APIKeyList (-want +got):\n%s", d)
		}
	})

	t.Run("an id taken", func(t *testing.T) {
		dup := *ingest
		dup.Name = "other"
		wantCode(t, "APIKeyCreate with an id taken", s.APIKeyCreate(ctx, &dup), nudge.ECONFLICT)
	})

	t.Run("not found", func(t *testing.T) {
		_, err := s.APIKeyGet(ctx, "nope")
		wantCode(t, "APIKeyGet(nope)", err, nudge.ENOTFOUND)
		wantCode(t, "APIKeyRevoke(nope)", s.APIKeyRevoke(ctx, "nope", now), nudge.ENOTFOUND)
	})

	t.Run("revoke", func(t *testing.T) {
		revokedAt := now.Add(time.Hour)
		if err := s.APIKeyRevoke(ctx, admin.ID, revokedAt); err != nil {
			t.Fatalf("APIKeyRevoke: %v", err)
		}
		// Revoking again keeps the first time.
		if err := s.APIKeyRevoke(ctx, admin.ID, revokedAt.Add(time.Hour)); err != nil {
			t.Fatalf("APIKeyRevoke again: %v", err)
		}
		got, err := s.APIKeyGet(ctx, admin.ID)
		if err != nil {
			t.Fatalf("APIKeyGet of a revoked key: %v", err)
		}
		want := *admin
		want.RevokedAt = &revokedAt
		if d := diff(&want, got); d != "" {
			t.Errorf("revoked key (-want +got):\n%s", d)
		}
		_, secret, _ := nudge.ParseAPIToken(adminToken)
		if got.Verify(secret) {
			t.Errorf("a revoked key verifies")
		}
		list, err := s.APIKeyList(ctx)
		if err != nil {
			t.Fatalf("APIKeyList: %v", err)
		}
		if len(list) != 3 {
			t.Errorf("APIKeyList after revoke has %d keys, want 3 (revoked keys are listed)", len(list))
		}
		other, err := s.APIKeyGet(ctx, ingest.ID)
		if err != nil || other.RevokedAt != nil {
			t.Errorf("another key after revoke = %+v, %v; want not revoked", other, err)
		}
	})
}
