package alert

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// Fingerprint identifies one alert: a rule and the label set of one of its
// instances (for example a threshold rule grouped by topic fires once per
// topic). It is the lowercase hex of the first 16 bytes of the SHA-256 of
// the rule name and the labels sorted by name, each string preceded by its
// length as a uvarint, so no two different inputs share an encoding
// whatever bytes they hold. It does not depend on the order of the labels
// (a map has none) and never changes for the same input: it is stored, so
// changing this encoding would orphan every stored alert.
//
// Only identity belongs in labels: a value that changes (a count, a
// latency) in a label makes every evaluation a new alert.
func Fingerprint(rule string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	put := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	put(rule)
	for _, k := range names {
		put(k)
		put(labels[k])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
