// Package api is the api role: hookstream's JSON API, its live feed
// (Server-Sent Events) and the console page, on a listener of their own,
// separate from the webhook receiver's, so the receiver can face the
// internet while the API stays internal.
//
// Every answer comes from the same query code the CLI uses (windows,
// journeys, store, process): the API adds authentication, parameters,
// pagination and JSON, never a second implementation of a question. The
// routes, parameters and answers are described in openapi.yaml, served at
// /api/v1/openapi.json, and tests hold the two together.
//
// It is not the place for anything the processors must do: the API only
// reads, except for the admin actions (requeue or discard dead letters,
// pause or resume processing), which call the same functions as the CLI.
package api
