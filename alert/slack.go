package alert

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// State is where an alert is in its lifecycle, as far as notifications go.
type State string

const (
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Range is an expected range of values (an anomaly's).
type Range struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Notification is one alert as a notification shows it.
type Notification struct {
	Rule        string   `json:"rule"`
	Severity    Severity `json:"severity"`
	State       State    `json:"state"`
	Fingerprint string   `json:"fingerprint"`
	Value       float64  `json:"value"`
	// Op and Threshold are the condition of a threshold or operational
	// rule (value > 50); with Op "" no threshold is shown.
	Op        Op      `json:"op,omitempty"`
	Threshold float64 `json:"threshold,omitempty"`
	// Expected is an anomaly's expected range; nil: none shown.
	Expected    *Range            `json:"expected,omitempty"`
	Window      string            `json:"window,omitempty"` // the window size, for example 1m; "" for none
	Labels      map[string]string `json:"labels"`
	StartedAt   time.Time         `json:"started_at"`
	ResolvedAt  time.Time         `json:"resolved_at,omitzero"`  // zero unless resolved
	Summary     string            `json:"summary,omitempty"`     // rendered from the rule's template
	Description string            `json:"description,omitempty"` // rendered from the rule's template
	RunbookURL  string            `json:"runbook_url,omitempty"`
	ConsoleURL  string            `json:"console_url,omitempty"` // the alert in hookstream's console
	GrafanaURL  string            `json:"grafana_url,omitempty"`
}

// Slack Block Kit limits (docs.slack.dev/reference/block-kit).
const (
	slackHeaderMax      = 150
	slackSectionTextMax = 3000
	slackFieldMax       = 2000
	slackFieldsMax      = 10
	slackButtonTextMax  = 75
	slackButtonURLMax   = 3000
	slackBlocksMax      = 50
	slackTextMax        = 3000 // our own bound on the fallback text
)

// SlackMessage is the body of a Slack incoming-webhook request.
type SlackMessage struct {
	Text   string       `json:"text"` // fallback: mobile notifications show only this
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is a Block Kit layout block: header, section, context,
// divider or actions.
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Fields   []SlackText `json:"fields,omitempty"`
	Elements []any       `json:"elements,omitempty"` // SlackText (context) or SlackButton (actions)
}

// SlackText is a text object: plain_text or mrkdwn.
type SlackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// SlackButton is a link button.
type SlackButton struct {
	Type     string    `json:"type"` // button
	Text     SlackText `json:"text"`
	URL      string    `json:"url"`
	ActionID string    `json:"action_id"`
	Style    string    `json:"style,omitempty"`
}

// SlackJSON renders n as a Slack incoming-webhook body.
func SlackJSON(n Notification) ([]byte, error) { return marshal(Slack(n)) }

// Slack builds n's message: a header with the severity and the rule, a
// section with the summary, a section of fields (state, value, threshold
// or expected range, window, labels), the description, a context line with
// the time and the fingerprint, and link buttons for the URLs that are
// set; plus the plain fallback text. Every limit of Block Kit is kept,
// text cut rune by rune and marked with "…", and every value is escaped
// for mrkdwn so that it cannot mention anyone or forge a link.
func Slack(n Notification) SlackMessage {
	resolved := n.State == StateResolved
	var blocks []SlackBlock

	blocks = append(blocks, SlackBlock{Type: "header", Text: &SlackText{
		Type: "plain_text", Emoji: true, Text: truncate(headline(n), slackHeaderMax),
	}})
	if n.Summary != "" {
		blocks = append(blocks, section(escape(n.Summary)))
	}

	state := "Firing"
	if resolved {
		state = "Resolved"
	}
	fields := []SlackText{
		field("State", state),
		field("Severity", string(n.Severity)),
		field("Value", formatValue(n.Value)),
	}
	if n.Op != "" {
		fields = append(fields, field("Threshold", string(n.Op)+" "+formatValue(n.Threshold)))
	}
	if n.Expected != nil {
		fields = append(fields, field("Expected", formatValue(n.Expected.Low)+" – "+formatValue(n.Expected.High)))
	}
	if n.Window != "" {
		fields = append(fields, field("Window", n.Window))
	}
	if len(n.Labels) > 0 {
		fields = append(fields, field("Labels", formatLabels(n.Labels)))
	}
	if len(fields) > slackFieldsMax {
		fields = fields[:slackFieldsMax]
	}
	blocks = append(blocks, SlackBlock{Type: "section", Fields: fields})

	if n.Description != "" {
		blocks = append(blocks, section(escape(n.Description)))
	}

	ctx := "Started " + slackDate(n.StartedAt)
	if resolved && !n.ResolvedAt.IsZero() {
		ctx += " · Resolved " + slackDate(n.ResolvedAt)
	}
	if n.Fingerprint != "" {
		ctx += " · `" + escape(n.Fingerprint) + "`"
	}
	blocks = append(blocks, SlackBlock{Type: "context", Elements: []any{
		SlackText{Type: "mrkdwn", Text: truncateMrkdwn(ctx, slackSectionTextMax)},
	}})

	if b := buttons(n); len(b) > 0 {
		blocks = append(blocks, SlackBlock{Type: "divider"}, SlackBlock{Type: "actions", Elements: b})
	}
	if len(blocks) > slackBlocksMax {
		blocks = blocks[:slackBlocksMax]
	}

	text := headline(n)
	if n.Summary != "" {
		text += ": " + n.Summary
	}
	return SlackMessage{Text: truncateMrkdwn(escape(text), slackTextMax), Blocks: blocks}
}

// buttons are the link buttons of n's URLs that are set.
func buttons(n Notification) []any {
	var bs []any
	for _, b := range []struct{ label, url, id string }{
		{"Open in hookstream", n.ConsoleURL, "console"},
		{"Grafana", n.GrafanaURL, "grafana"},
		{"Runbook", n.RunbookURL, "runbook"},
	} {
		if b.url == "" || utf8.RuneCountInString(b.url) > slackButtonURLMax {
			continue // a cut URL would lead somewhere else
		}
		bs = append(bs, SlackButton{
			Type: "button", Text: SlackText{Type: "plain_text", Text: truncate(b.label, slackButtonTextMax)},
			URL: b.url, ActionID: b.id,
		})
	}
	return bs
}

// headline is "🔴 CRITICAL: rule" when firing, "✅ RESOLVED (critical):
// rule" when resolved.
func headline(n Notification) string {
	if n.State == StateResolved {
		return "✅ RESOLVED (" + string(n.Severity) + "): " + n.Rule
	}
	icon := "🔵"
	switch n.Severity {
	case SeverityCritical:
		icon = "🔴"
	case SeverityWarning:
		icon = "🟠"
	}
	return icon + " " + strings.ToUpper(string(n.Severity)) + ": " + n.Rule
}

func section(mrkdwn string) SlackBlock {
	return SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: truncateMrkdwn(mrkdwn, slackSectionTextMax)}}
}

// field is a section field: a bold name over the escaped value.
func field(name, value string) SlackText {
	return SlackText{Type: "mrkdwn", Text: truncateMrkdwn("*"+name+"*\n"+escape(value), slackFieldMax)}
}

func formatLabels(labels map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(labels)) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

// formatValue writes v briefly: 50, 0.25, 1.2346e+09.
func formatValue(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// slackDate shows t in each reader's time zone, with UTC as the fallback
// (https://docs.slack.dev/messaging/formatting-message-text#date-formatting).
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04:05 UTC"))
}

// escape makes s safe in mrkdwn: &, < and > become entities (and nothing
// else is encoded), so s cannot mention (<!channel>) or link.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// truncate cuts s to at most max runes, ending it with "…" when cut.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// truncateMrkdwn is truncate for escaped mrkdwn: it does not leave half an
// entity (&am…) at the cut.
func truncateMrkdwn(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	cut := string([]rune(s)[:max-1])
	if i := strings.LastIndexByte(cut, '&'); i >= 0 && len(cut)-i < len("&amp;") && !strings.Contains(cut[i:], ";") {
		cut = cut[:i]
	}
	return cut + "…"
}
