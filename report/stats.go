package report

import (
	"math"
	"slices"
	"time"
)

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson returns the Wilson score interval of x successes in n trials at
// 95%. n = 0 gives (0, 1).
func Wilson(x, n int64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	p, fn, z2 := float64(x)/float64(n), float64(n), z95*z95
	centre := p + z2/(2*fn)
	half := z95 * math.Sqrt(p*(1-p)/fn+z2/(4*fn*fn))
	den := 1 + z2/fn
	return max(0, (centre-half)/den), min(1, (centre+half)/den)
}

// Newcombe returns the difference p1 − p2 of two independent proportions
// x1/n1 and x2/n2 and its 95% interval by Newcombe's hybrid score method
// (method 10 of Newcombe 1998), built from the two Wilson intervals.
func Newcombe(x1, n1, x2, n2 int64) (diff, lo, hi float64) {
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	l1, u1 := Wilson(x1, n1)
	l2, u2 := Wilson(x2, n2)
	diff = p1 - p2
	lo = diff - math.Sqrt((p1-l1)*(p1-l1)+(u2-p2)*(u2-p2))
	hi = diff + math.Sqrt((u1-p1)*(u1-p1)+(p2-l2)*(p2-l2))
	return diff, lo, hi
}

// Spread is a distribution of durations: how many, and the median, 75th
// and 90th percentiles (nearest rank), in seconds.
type Spread struct {
	Count  int     `json:"count"`
	Median float64 `json:"median_seconds"`
	P75    float64 `json:"p75_seconds"`
	P90    float64 `json:"p90_seconds"`
}

// spread summarizes durations (it sorts ds).
func spread(ds []time.Duration) Spread {
	if len(ds) == 0 {
		return Spread{}
	}
	slices.Sort(ds)
	return Spread{Count: len(ds), Median: rank(ds, 0.5).Seconds(), P75: rank(ds, 0.75).Seconds(), P90: rank(ds, 0.9).Seconds()}
}

// rank is the nearest-rank percentile q of sorted ds.
func rank[T any](sorted []T, q float64) T {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// rate is x/n, 0 when n is 0.
func rate(x, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(x) / float64(n)
}
