// Package sim is a stand-in for Dwolla's webhook sender, used by tests, the
// benchmark and `hookstream dev`.
//
// It has four parts:
//
//   - Generation (Generate, NewGenerator, NewOrdered): realistic, reproducible
//     customer lifecycles as Dwolla would report them (verification with its
//     retry/KBA/document/suspended paths, funding sources with micro-deposits,
//     bank transfers that complete, fail, are cancelled or fail after
//     completing, customer transfer legs and mass payments), each event with
//     the exact JSON body Dwolla would POST. The same Config.Seed gives
//     byte-identical events.
//   - Delivery (Send, or NewSender and Sender.Run to read from a channel):
//     signed POSTs at an open-loop rate with bounded concurrency, a
//     configurable fraction of duplicate and of delayed (reordered)
//     deliveries, and Dwolla's retry schedule for any non-2xx answer or
//     network error, compressible in time.
//   - Ground truth (WriteTruth, TruthWriter, ReadTruth, WritePaths,
//     VerifyStreams, VerifyEvents): what was generated (see WriteTruth for
//     the file format), and a comparison of it with what hookstream stored
//     in Redis or PostgreSQL.
//   - A whole run (Run, RunConfig): what `hookstream sim` does with those
//     parts, once or continuously, with progress lines and a summary.
//
// It is not a client of the Dwolla API and not a model of Dwolla's balances or
// amounts: bodies carry only the envelope fields Dwolla sends (id, topic,
// times, resource and links). It writes nothing to Redis or PostgreSQL; the
// Verify functions only read.
package sim
