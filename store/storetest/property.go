package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nudge/nudge"
	"pgregory.net/rapid"
)

// testContactMergeProperty checks that, after any sequence of ContactMerge
// calls, each stored contact is what applying the same patches in memory,
// with ContactPatch.Apply, gives. Each check uses a contact id of its own
// in one store, so that opening a store per check does not dominate.
func testContactMergeProperty(t *testing.T, open func(t *testing.T) nudge.Store) {
	s := open(t)
	n := 0
	str := func(vals ...string) *rapid.Generator[*string] {
		return rapid.Custom(func(t *rapid.T) *string {
			if rapid.Bool().Draw(t, "set") {
				v := rapid.SampledFrom(vals).Draw(t, "value")
				return &v
			}
			return nil
		})
	}
	attr := rapid.Custom(func(t *rapid.T) any {
		switch rapid.IntRange(0, 4).Draw(t, "kind") {
		case 0:
			return nil // delete
		case 1:
			return rapid.SampledFrom([]string{"", "pro", "free", "ünïcode", "42"}).Draw(t, "string")
		case 2:
			return rapid.Bool().Draw(t, "bool")
		case 3:
			return float64(rapid.IntRange(-1000, 1000).Draw(t, "int"))
		default:
			return rapid.SampledFrom([]float64{0.5, -2.25, 1e6, 3.14159}).Draw(t, "float")
		}
	})
	rapid.Check(t, func(rt *rapid.T) {
		n++
		id := fmt.Sprintf("prop%05d", n)
		var model *nudge.Contact
		at := now
		calls := rapid.IntRange(1, 4).Draw(rt, "calls")
		for call := range calls {
			at = at.Add(time.Minute)
			var patches []*nudge.ContactPatch
			for range rapid.IntRange(1, 4).Draw(rt, "patches") {
				p := &nudge.ContactPatch{
					ID:             id,
					Email:          str("", "ann@example.com", "bob@example.com").Draw(rt, "email"),
					Phone:          str("", "+15550100").Draw(rt, "phone"),
					Timezone:       str("", "Europe/Paris", "America/New_York").Draw(rt, "timezone"),
					LifecycleStage: str("", nudge.StageLead, nudge.StageCustomer).Draw(rt, "lifecycle_stage"),
					JourneyStage:   str("", "trial").Draw(rt, "journey_stage"),
					Attributes:     rapid.MapOfN(rapid.SampledFrom([]string{"a", "b", "c", "d.e"}), attr, 0, 3).Draw(rt, "attributes"),
				}
				if rapid.Bool().Draw(rt, "set is_customer") {
					p.IsCustomer = ptr(rapid.Bool().Draw(rt, "is_customer"))
				}
				patches = append(patches, p)
			}
			rs, err := s.ContactMerge(ctx, patches, at)
			if err != nil {
				rt.Fatalf("call %d: ContactMerge: %v", call, err)
			}
			for i, p := range patches {
				created := model == nil
				if created {
					model = &nudge.Contact{ID: id, CreatedAt: at}
				}
				p.Apply(model)
				model.UpdatedAt = at
				if rs[i].Created != created {
					rt.Fatalf("call %d patch %d: Created = %v, want %v", call, i, rs[i].Created, created)
				}
				if d := diff(model, rs[i].Contact); d != "" {
					rt.Fatalf("call %d patch %d: result (-model +store):\n%s", call, i, d)
				}
			}
		}
		got, err := s.ContactGet(ctx, id)
		if err != nil {
			rt.Fatalf("ContactGet: %v", err)
		}
		if d := diff(model, got); d != "" {
			rt.Fatalf("stored contact (-model +store):\n%s", d)
		}
	})
}
