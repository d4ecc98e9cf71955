package sqlite_test

import (
	"testing"

	"github.com/nudge/nudge/store/storetest"
)

// BenchmarkEngineCommit commits batches of 500 due transitions
// (storetest.BenchEngineCommit). Run: go test ./store/sqlite -run '^$'
// -bench EngineCommit -benchtime 40x
func BenchmarkEngineCommit(b *testing.B) {
	db, _ := migrated(b)
	storetest.BenchEngineCommit(b, db, 500)
}
