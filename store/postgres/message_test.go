package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/storetest"
)

// BenchmarkMessageLog reads pages of the messages log over an outbox of
// 1,000,000 messages (storetest.BenchMessageLog), written with one INSERT
// … SELECT and analyzed. Run: NUDGE_TEST_POSTGRES=… go test
// ./store/postgres -run '^$' -bench MessageLog -benchtime 200x
func BenchmarkMessageLog(b *testing.B) {
	const n = 1_000_000
	db := nudgetest.Postgres(b)
	ctx := context.Background()
	start := time.Now()
	if err := db.Exec(ctx, `INSERT INTO messages (id, enrollment_id, contact_id, journey_id, version, step_id, channel, status,
			idempotency_key, available_at, created_at, updated_at)
		SELECT format('m%s', lpad(i::text, 9, '0')), 'e' || i, 'c' || (i % 50000), 'j' || (i % 20), 1, 's' || (i % 7),
			CASE WHEN i % 5 = 0 THEN 'sms' ELSE 'email' END, CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'sent' END,
			'k' || i, t, t, t
		FROM generate_series(0, $1::int - 1) i, LATERAL (SELECT $2::timestamptz + i * interval '1 second' AS t) x`,
		n, storetest.MessageLogEpoch); err != nil {
		b.Fatal(err)
	}
	if err := db.Exec(ctx, `ANALYZE messages`); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d messages in %s", n, time.Since(start).Round(time.Millisecond))
	storetest.BenchMessageLog(b, db, n)
}
