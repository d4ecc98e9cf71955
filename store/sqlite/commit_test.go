package sqlite_test

import (
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/store/storetest"
)

// BenchmarkEngineCommit commits batches of 500 due transitions
// (storetest.BenchEngineCommit). Run: go test ./store/sqlite -run '^$'
// -bench EngineCommit -benchtime 40x
func BenchmarkEngineCommit(b *testing.B) {
	db, _ := migrated(b)
	storetest.BenchEngineCommit(b, db, 500)
}

// BenchmarkMessageUpdate writes the status changes of delivery, a sending
// mark and an outcome per message in groups of 20
// (storetest.BenchMessageUpdate). Run: go test ./store/sqlite -run '^$'
// -bench MessageUpdate -benchtime 40x
func BenchmarkMessageUpdate(b *testing.B) {
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		b.Run(ch, func(b *testing.B) {
			db, _ := migrated(b)
			storetest.BenchMessageUpdate(b, db, ch, 20)
		})
	}
}
