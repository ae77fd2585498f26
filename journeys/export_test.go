package journeys

// EachRow exposes eachRow to the external tests, which check aggregates
// against every stored instance.
var EachRow = eachRow
