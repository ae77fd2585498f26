package query

import "github.com/hookstream/hookstream/journey"

// Funnels and instances moved to package journey (journey.Funnel,
// journey.Instance, journey.Instances). These two names stay only while
// TestWilsonInterval in metrics_test.go calls query.Wilson; delete this
// file once that test moves to journey (journey_test already covers
// journey.Wilson).

// Conversion is journey.Conversion.
type Conversion = journey.Conversion

// Wilson is journey.Wilson.
func Wilson(x, n int64) Conversion { return journey.Wilson(x, n) }
