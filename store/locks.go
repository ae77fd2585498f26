package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The advisory lock keys of every feature, in one list so no two collide.
// Advisory locks are database-wide; the second key of every lock taken here
// is the schema, so installations (and tests) in different schemas of one
// database do not contend.
const (
	// WindowsLock orders window folds (shared) against closing and replay
	// (exclusive). Unlike FOR SHARE on rows, a waiting exclusive request is
	// not overtaken by later shared ones, and the order cannot deadlock.
	WindowsLock int32 = 0x686f6f6b // "hook"
	// CloserLock lets one windows closer work at a time.
	CloserLock int32 = 0x636c6f73 // "clos"
	// JourneysLock orders journey folds and the abandoner (shared) against
	// rebuilds (exclusive): a rebuild reads the events and rewrites
	// instances with no fold committing in between.
	JourneysLock int32 = 0x6a726e79 // "jrny"
	// AnomalyLock lets one anomaly scorer work at a time.
	AnomalyLock int32 = 0x616e6f6d // "anom"
	// AlertLock lets one alert evaluator work at a time.
	AlertLock int32 = 0x616c7274 // "alrt"
	// ReconcileLock lets one reconciliation run at a time (a session lock:
	// a run outlasts any one transaction).
	ReconcileLock int32 = 0x72636e63 // "rcnc"
)

// Lock takes the advisory lock key (for this schema) until tx ends, shared
// or exclusive, waiting for it.
func Lock(ctx context.Context, tx pgx.Tx, key int32, exclusive bool) error {
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	if _, err := tx.Exec(ctx, `SELECT `+fn+`($1, hashtext(current_schema()))`, key); err != nil {
		return fmt.Errorf("take advisory lock %#x: %w", key, err)
	}
	return nil
}

// TryLock takes the advisory lock key (for this schema) exclusively until tx
// ends, if no one holds it, and reports whether it did.
func TryLock(ctx context.Context, tx pgx.Tx, key int32) (bool, error) {
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext(current_schema()))`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("try advisory lock %#x: %w", key, err)
	}
	return got, nil
}
