package delivery_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/delivery"
)

type counting struct {
	delivery.Store
	calls, rows atomic.Int64
}

func (c *counting) MessageUpdate(ctx context.Context, us []*nudge.MessageUpdate, now time.Time) ([]bool, error) {
	c.calls.Add(1)
	c.rows.Add(int64(len(us)))
	return c.Store.MessageUpdate(ctx, us, now)
}

func BenchmarkZZCount(b *testing.B) {
	e := newEnv(b)
	benchSeed(b, e, b.N, nudge.ChannelSMS, "reminder")
	cs := &counting{Store: e.db}
	w := e.worker(func(c *delivery.Config) { c.Batch = 500; c.Store = cs })
	benchDeliver(b, e, w, nudge.ChannelSMS)
	b.Logf("%d updates in %d calls", cs.rows.Load(), cs.calls.Load())
}
