package process

import (
	"context"

	"github.com/hookstream/hookstream/stream"
)

// Handle stores and acknowledges msgs as a worker does with a batch it has
// read. Tests drive it without the read loop, so that the sequence of
// transactions (and of folding calls) is the same on every run.
func (p *Processor) Handle(ctx context.Context, consumer string, msgs []stream.Message) error {
	return p.handle(ctx, consumer, msgs)
}
