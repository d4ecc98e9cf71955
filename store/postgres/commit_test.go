package postgres_test

import (
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/storetest"
)

// BenchmarkEngineCommit commits batches of 500 due transitions
// (storetest.BenchEngineCommit). Run: NUDGE_TEST_POSTGRES=… go test
// ./store/postgres -run '^$' -bench EngineCommit -benchtime 40x
func BenchmarkEngineCommit(b *testing.B) {
	storetest.BenchEngineCommit(b, nudgetest.Postgres(b), 500)
}

// BenchmarkMessageUpdate writes the status changes of delivery, a sending
// mark and an outcome per message in groups of 20
// (storetest.BenchMessageUpdate). Run: NUDGE_TEST_POSTGRES=… go test
// ./store/postgres -run '^$' -bench MessageUpdate -benchtime 40x
func BenchmarkMessageUpdate(b *testing.B) {
	for _, ch := range []string{nudge.ChannelEmail, nudge.ChannelSMS} {
		b.Run(ch, func(b *testing.B) {
			storetest.BenchMessageUpdate(b, nudgetest.Postgres(b), ch, 20)
		})
	}
}
