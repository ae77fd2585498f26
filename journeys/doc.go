// Package journeys follows multi-step lifecycles (a customer's verification,
// a funding source's micro-deposits, a transfer) per subject, from
// definitions in YAML, and answers questions about them: funnels per cohort,
// one instance's story, counts by status.
//
// An instance's state is the set of steps it has reached, each with the
// first event time and event id that reached it; its status, current step
// and conflicts are derived from that set by one fixed rule
// (Definition.Derive), so arrival order, duplicates and replays cannot
// change it.
//
// The package owns everything journeys keep in PostgreSQL (the
// journey_instances, journey_funnel, journey_records and journey_epoch
// tables) and every statement that touches them:
//
//   - Fold folds: the processor hands it, in each batch's transaction, the
//     events that transaction newly stored, and tells it (TxEnded) whether
//     the transaction committed.
//   - Fold.Rebuild and Fold.Refold refold: they recompute instances and
//     funnels from the stored events ("hookstream refold --journey",
//     "hookstream refold --from").
//   - Abandoner marks instances abandoned as the event-time watermark
//     passes their deadlines.
//   - Funnel, Funnels, Instance, Instances and CountByStatus are the reads
//     the CLI and the API share.
//
// It is not the event store (package store stores and reads events and
// holds the advisory locks), it does not read Redis streams or decide
// what is new (package process does, and calls Fold), and it knows nothing
// of windows, HTTP or output formats.
package journeys
