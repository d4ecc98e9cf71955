package postgres_test

import (
	"testing"

	"github.com/nudge/nudge"
	"github.com/nudge/nudge/nudgetest"
	"github.com/nudge/nudge/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) nudge.Store { return nudgetest.Postgres(t) })
}
