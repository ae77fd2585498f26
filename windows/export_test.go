package windows

// What the external tests reach of the row mapping and the reads that only
// this package uses.

// Row is a row of window_aggs.
type Row = aggRow

var (
	FromRow = fromRow
	KeyOf   = keyOf
	RowsIn  = aggRowsIn
)

// ToRow writes a's values into r.
func (a *Agg) ToRow(r *Row) error { return a.toRow(r) }
