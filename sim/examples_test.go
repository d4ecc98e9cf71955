package sim_test

import "testing"

func TestExampleWebinar(t *testing.T) {
	_, out := runExample(t, "webinar")
	t.Log("\n" + out)
}
