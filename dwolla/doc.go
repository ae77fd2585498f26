// Package dwolla holds what hookstream knows about Dwolla itself: the webhook
// envelope, the topic catalogue and the signature scheme. It is shared by the
// receiver, the simulator and (later) reconciliation. It does no I/O.
package dwolla
