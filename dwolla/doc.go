// Package dwolla holds what hookstream knows about Dwolla itself: the webhook
// envelope, the topic catalogue, the signature scheme, and the API's shapes
// (api.go). It is shared by the receiver, the simulator and reconciliation.
// Only the API client (client.go) does I/O.
package dwolla
