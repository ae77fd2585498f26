package alert

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Group is one notification: the alerts of one rule that changed (or are
// reminded of) together, as one Slack message or one webhook call. Its ID
// is the notification's stable id: every retry of it carries the same one
// (the webhook-id header), so a receiver can deduplicate.
type Group struct {
	ID        string         `json:"id"`
	Key       string         `json:"group_key"` // the rule, for now: alerts group by rule
	Rule      string         `json:"rule"`
	Severity  Severity       `json:"severity"`
	Status    State          `json:"status"` // firing while any alert in it fires, else resolved
	CreatedAt time.Time      `json:"created_at"`
	Alerts    []Notification `json:"alerts"`
}

// GroupKey is the group an alert of rule belongs to. Alertmanager's
// group_by: [alertname]: the label sets of one rule firing together make
// one notification.
func GroupKey(rule string) string { return "rule=" + rule }

// NewID makes a notification id: "ntf_" and 26 base32 characters (130
// random bits).
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// Counts says how many of the group's alerts fire and how many resolved.
func (g Group) Counts() (firing, resolved int) {
	for _, n := range g.Alerts {
		if n.State == StateResolved {
			resolved++
		} else {
			firing++
		}
	}
	return firing, resolved
}

// WebhookPayload is the JSON a webhook target receives, in the Standard
// Webhooks shape: a type, a timestamp and the data.
type WebhookPayload struct {
	Type      string    `json:"type"` // alert.firing or alert.resolved
	Timestamp time.Time `json:"timestamp"`
	Data      Group     `json:"data"`
}

// WebhookJSON renders g as a webhook target's body. It depends only on g,
// so every retry of a notification sends the same bytes.
func WebhookJSON(g Group) ([]byte, error) {
	return marshal(WebhookPayload{Type: "alert." + string(g.Status), Timestamp: g.CreatedAt.UTC(), Data: g})
}

// marshal is json.Marshal without HTML escaping: receivers read "> 50",
// not "\u003e 50" (Slack's mrkdwn escaping is done by escape).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// slackGroupAlertsMax is how many alerts a grouped Slack message lists one
// by one; the rest are counted.
const slackGroupAlertsMax = 20

// SlackGroup renders g as a Slack incoming-webhook body: a group of one
// alert is that alert's message (see Slack); a larger group has a header
// with the counts, one section per alert (state, labels, value and
// condition, summary) up to slackGroupAlertsMax, and the first alert's
// links.
func SlackGroup(g Group) SlackMessage {
	if len(g.Alerts) == 1 {
		return Slack(g.Alerts[0])
	}
	firing, resolved := g.Counts()
	head := Notification{Rule: g.Rule, Severity: g.Severity, State: g.Status}
	title := headline(head) + fmt.Sprintf(" (%d firing, %d resolved)", firing, resolved)
	blocks := []SlackBlock{{Type: "header", Text: &SlackText{Type: "plain_text", Emoji: true, Text: truncate(title, slackHeaderMax)}}}
	for i, n := range g.Alerts {
		if i == slackGroupAlertsMax {
			blocks = append(blocks, section(fmt.Sprintf("… and %d more", len(g.Alerts)-i)))
			break
		}
		state := "Firing"
		if n.State == StateResolved {
			state = "Resolved"
		}
		line := "*" + state + "*"
		if len(n.Labels) > 0 {
			line += " · " + escape(formatLabels(n.Labels))
		}
		line += " · value " + formatValue(n.Value)
		if n.Op != "" {
			line += " (" + escape(string(n.Op)) + " " + formatValue(n.Threshold) + ")"
		}
		if n.Expected != nil {
			line += " (expected " + formatValue(n.Expected.Low) + " – " + formatValue(n.Expected.High) + ")"
		}
		if n.Summary != "" {
			line += "\n" + escape(n.Summary)
		}
		blocks = append(blocks, section(line))
	}
	first := g.Alerts[0]
	blocks = append(blocks, SlackBlock{Type: "context", Elements: []any{
		SlackText{Type: "mrkdwn", Text: truncateMrkdwn("Started "+slackDate(first.StartedAt)+" · `"+escape(g.Key)+"`", slackSectionTextMax)},
	}})
	if b := buttons(first); len(b) > 0 {
		blocks = append(blocks, SlackBlock{Type: "divider"}, SlackBlock{Type: "actions", Elements: b})
	}
	if len(blocks) > slackBlocksMax {
		blocks = blocks[:slackBlocksMax]
	}
	return SlackMessage{Text: truncateMrkdwn(escape(title), slackTextMax), Blocks: blocks}
}

// SlackGroupJSON renders g as a Slack incoming-webhook body.
func SlackGroupJSON(g Group) ([]byte, error) { return marshal(SlackGroup(g)) }

// Body renders g for a target of kind k.
func Body(k TargetKind, g Group) ([]byte, error) {
	switch k {
	case TargetSlack:
		return SlackGroupJSON(g)
	case TargetWebhook:
		return WebhookJSON(g)
	}
	return nil, fmt.Errorf("target kind %q: use slack or webhook", k)
}
