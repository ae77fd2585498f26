package apiclient

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The live feed: GET /api/v1/live, Server-Sent Events (docs/api.md#the-live-feed).

// LiveMessage is one message of the live feed.
type LiveMessage struct {
	ID    string          // the feed's position after it ("" for a gap)
	Event string          // event, window, anomaly, alert or gap
	Data  json.RawMessage // the message's JSON object
}

// LiveParams selects what the feed sends.
type LiveParams struct {
	Types  []string // event, window, anomaly, alert; none for all
	Topics []string
}

// Live reads the feed from lastID ("" for now) and calls fn for each
// message until the connection ends, ctx is done or fn fails. It returns
// the id to resume from: that of the last message fn accepted (or of the
// id-only message a new connection opens with), so a reconnect with it
// neither loses nor repeats a message. connected, if not nil, is called
// once the feed has answered 200.
func (c *Client) Live(ctx context.Context, p LiveParams, lastID string, connected func(), fn func(LiveMessage) error) (string, error) {
	u := *c.base
	u.Path += "/api/v1/live"
	v := url.Values{}
	if len(p.Types) > 0 {
		v.Set("types", strings.Join(p.Types, ","))
	}
	if len(p.Topics) > 0 {
		v.Set("topics", strings.Join(p.Topics, ","))
	}
	u.RawQuery = v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return lastID, fmt.Errorf("build the live feed's request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// The feed is not bounded in time: the client's overall timeout (the
	// datasource's, for the other routes) would cut it.
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return lastID, fmt.Errorf("cannot reach the hookstream live feed at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := &Error{Status: resp.StatusCode, Path: "/api/v1/live"}
		_ = json.Unmarshal(body, e)
		e.Status = resp.StatusCode
		return lastID, e
	}
	if connected != nil {
		connected()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var (
		id, event string
		hasID     bool
		dataBuf   strings.Builder
		hasData   bool
	)
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // the end of a message: dispatch it
			if hasData {
				m := LiveMessage{ID: id, Event: event, Data: json.RawMessage(dataBuf.String())}
				if !hasID {
					m.ID = ""
				}
				if err := fn(m); err != nil {
					return lastID, err
				}
			}
			if hasID {
				lastID = id
			}
			id, event, hasID, hasData = "", "", false, false
			dataBuf.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // a comment or heartbeat
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			id, hasID = value, true
		case "event":
			event = value
		case "data":
			if hasData {
				dataBuf.WriteByte('\n')
			}
			dataBuf.WriteString(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		return lastID, fmt.Errorf("read the live feed: %w", err)
	}
	return lastID, fmt.Errorf("the live feed ended: %w", io.ErrUnexpectedEOF)
}
