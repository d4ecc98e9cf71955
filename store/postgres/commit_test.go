package postgres_test

import (
	"testing"

	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/storetest"
)

// BenchmarkEngineCommit commits batches of 500 due transitions
// (storetest.BenchEngineCommit). Run: NUDGE_TEST_POSTGRES=… go test
// ./store/postgres -run '^$' -bench EngineCommit -benchtime 40x
func BenchmarkEngineCommit(b *testing.B) {
	storetest.BenchEngineCommit(b, nudgetest.Postgres(b), 500)
}
