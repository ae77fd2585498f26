// Package bench measures hookstream against the servers it runs on: it is
// what `hookstream bench ingest|process|windows|memory` run. Each benchmark is
// one function (Ingest, Process, Windows, Memory) taking a config struct whose
// fields are the command's flags; it works in a fresh Redis namespace and
// fresh PostgreSQL schemas that it deletes at the end, writes its figures to
// the config's Out as each phase ends (the command's output), and returns them
// as a report.
//
// It also holds the load generator (Bodies, ClosedLoop, OpenLoop) and the
// reference implementations the benchmarks compare against (NaiveReceiver,
// NaiveProcess). Nothing in the engine imports it, and it imports nothing made
// for tests, so the binary that embeds it does not link package testing.
package bench
