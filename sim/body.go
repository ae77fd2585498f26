package sim

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Random streams: every customer has its own, derived from (seed, stream), so
// generating customer k never depends on the customers before it.
const (
	accountStream = 1 << 62
	startBase     = 1 << 61
)

func startStream(k int64) uint64 { return startBase + uint64(k) }

func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix(uint64(seed)), splitmix(stream^0x5851f42d4c957f2d)))
}

// splitmix is SplitMix64's finaliser: it spreads nearby seeds far apart.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newUUID draws a version-4 UUID from r, so ids are reproducible.
func newUUID(r *rand.Rand) string {
	var u uuid.UUID
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		u[i] = byte(hi >> (56 - 8*i))
		u[8+i] = byte(lo >> (56 - 8*i))
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// timeLayout is how Dwolla writes event times: RFC 3339, milliseconds, "Z".
const timeLayout = "2006-01-02T15:04:05.000Z"

const halType = "application/vnd.dwolla.v1.hal+json"

type halLink struct {
	Href         string `json:"href"`
	Type         string `json:"type"`
	ResourceType string `json:"resource-type"`
}

// wireEvent is the body's JSON shape; the field order is the order Dwolla's
// examples use.
type wireEvent struct {
	ID            string `json:"id"`
	ResourceID    string `json:"resourceId"`
	Topic         string `json:"topic"`
	Timestamp     string `json:"timestamp"`
	Created       string `json:"created"`
	CorrelationID string `json:"correlationId,omitempty"`
	Links         struct {
		Self     halLink `json:"self"`
		Account  halLink `json:"account"`
		Resource halLink `json:"resource"`
		Customer halLink `json:"customer"`
	} `json:"_links"`
}

// resource is the thing a lifecycle is about.
type resource struct {
	id         string // lower case
	collection string // "customers", "funding-sources", "transfers", "mass-payments"
	halType    string // "customer", "funding-source", "transfer", "mass-payment"
	upper      bool   // Dwolla shows some transfer ids in upper case
}

func (g *Generator) body(id, topic string, created time.Time, res resource, customerID, correlationID string) []byte {
	resID := res.id
	if res.upper {
		resID = strings.ToUpper(resID)
	}
	at := created.Format(timeLayout)
	w := wireEvent{ID: id, ResourceID: resID, Topic: topic, Timestamp: at, Created: at, CorrelationID: correlationID}
	h := g.cfg.Host
	w.Links.Self = halLink{Href: h + "/events/" + id, Type: halType, ResourceType: "event"}
	w.Links.Account = halLink{Href: h + "/accounts/" + g.account, Type: halType, ResourceType: "account"}
	w.Links.Resource = halLink{Href: h + "/" + res.collection + "/" + resID, Type: halType, ResourceType: res.halType}
	w.Links.Customer = halLink{Href: h + "/customers/" + customerID, Type: halType, ResourceType: "customer"}
	b, err := json.Marshal(&w)
	if err != nil {
		panic("sim: marshal event body: " + err.Error()) // only strings: cannot fail
	}
	return b
}
