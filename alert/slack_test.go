package alert

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// slackBody is the decoded JSON, independent of the package's types.
type slackBody struct {
	Text   string `json:"text"`
	Blocks []struct {
		Type string `json:"type"`
		Text *struct {
			Type, Text string
		} `json:"text"`
		Fields []struct {
			Type, Text string
		} `json:"fields"`
		Elements []map[string]any `json:"elements"`
	} `json:"blocks"`
}

func decodeSlack(t *testing.T, n Notification) slackBody {
	t.Helper()
	b, err := SlackJSON(n)
	if err != nil {
		t.Fatal(err)
	}
	var m slackBody
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

func types(m slackBody) string {
	var ts []string
	for _, b := range m.Blocks {
		ts = append(ts, b.Type)
	}
	return strings.Join(ts, ",")
}

var started = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func firing() Notification {
	return Notification{
		Rule: "transfer-failures-high", Severity: SeverityCritical, State: StateFiring, Fingerprint: "0123abcd",
		Value: 73, Op: ">", Threshold: 50, Window: "1m",
		Labels:    map[string]string{"topic": "customer_bank_transfer_failed", "team": "payments"},
		StartedAt: started, Summary: "73 bank transfer failures in 1m", Description: "Check the failure codes.",
		RunbookURL: "https://wiki.example.com/rb", ConsoleURL: "https://hookstream.example.com/alerts/1",
		GrafanaURL: "https://grafana.example.com/d/x",
	}
}

func TestSlackFiring(t *testing.T) {
	m := decodeSlack(t, firing())
	if got := types(m); got != "header,section,section,section,context,divider,actions" {
		t.Fatalf("blocks %s", got)
	}
	h := m.Blocks[0].Text
	if h.Type != "plain_text" || !strings.Contains(h.Text, "CRITICAL") || !strings.Contains(h.Text, "transfer-failures-high") {
		t.Errorf("header %+v", h)
	}
	if m.Blocks[1].Text.Text != "73 bank transfer failures in 1m" {
		t.Errorf("summary %+v", m.Blocks[1].Text)
	}
	var fields []string
	for _, f := range m.Blocks[2].Fields {
		if f.Type != "mrkdwn" {
			t.Errorf("field type %s", f.Type)
		}
		fields = append(fields, f.Text)
	}
	want := []string{"*State*\nFiring", "*Severity*\ncritical", "*Value*\n73", "*Threshold*\n&gt; 50", "*Window*\n1m",
		"*Labels*\nteam=payments, topic=customer_bank_transfer_failed"}
	if strings.Join(fields, "|") != strings.Join(want, "|") {
		t.Errorf("fields\n%q\nwant\n%q", fields, want)
	}
	ctx := m.Blocks[4].Elements[0]["text"].(string)
	if !strings.Contains(ctx, "<!date^1796115600^") || !strings.Contains(ctx, "2026-12-01 09:00:00 UTC") || !strings.Contains(ctx, "0123abcd") || strings.Contains(ctx, "Resolved") {
		t.Errorf("context %q", ctx)
	}
	var urls []string
	for _, e := range m.Blocks[6].Elements {
		if e["type"] != "button" {
			t.Errorf("action %v", e)
		}
		urls = append(urls, e["url"].(string))
	}
	if len(urls) != 3 || urls[0] != "https://hookstream.example.com/alerts/1" || urls[2] != "https://wiki.example.com/rb" {
		t.Errorf("buttons %v", urls)
	}
	if !strings.Contains(m.Text, "CRITICAL: transfer-failures-high: 73 bank transfer failures") {
		t.Errorf("fallback text %q", m.Text)
	}
}

func TestSlackResolved(t *testing.T) {
	n := firing()
	n.State, n.ResolvedAt = StateResolved, started.Add(7*time.Minute)
	n.RunbookURL, n.ConsoleURL, n.GrafanaURL = "", "", ""
	n.Op, n.Expected = "", &Range{Low: 10, High: 20.5}
	m := decodeSlack(t, n)
	if got := types(m); got != "header,section,section,section,context" {
		t.Fatalf("blocks %s (no URLs: no actions)", got)
	}
	if h := m.Blocks[0].Text.Text; !strings.Contains(h, "RESOLVED") {
		t.Errorf("header %q", h)
	}
	if !strings.Contains(m.Text, "RESOLVED") {
		t.Errorf("fallback %q", m.Text)
	}
	var fields []string
	for _, f := range m.Blocks[2].Fields {
		fields = append(fields, f.Text)
	}
	all := strings.Join(fields, "|")
	if !strings.Contains(all, "*State*\nResolved") || !strings.Contains(all, "*Expected*\n10 – 20.5") || strings.Contains(all, "Threshold") {
		t.Errorf("fields %q", fields)
	}
	if ctx := m.Blocks[4].Elements[0]["text"].(string); !strings.Contains(ctx, "Resolved <!date^1796116020^") {
		t.Errorf("context %q", ctx)
	}
}

func TestSlackEscapes(t *testing.T) {
	n := firing()
	n.Summary = "<!channel> & <https://evil|click>"
	n.Labels = map[string]string{"topic": "<@U123>"}
	m := decodeSlack(t, n)
	if got := m.Blocks[1].Text.Text; got != "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;" {
		t.Errorf("summary %q", got)
	}
	if got := m.Blocks[2].Fields[5].Text; got != "*Labels*\ntopic=&lt;@U123&gt;" {
		t.Errorf("labels %q", got)
	}
	if strings.Contains(m.Text, "<!channel>") {
		t.Errorf("fallback %q", m.Text)
	}
}

func TestSlackLimits(t *testing.T) {
	n := firing()
	n.Rule = strings.Repeat("é", 300)
	n.Description = strings.Repeat("ü", 5000)
	n.Labels = map[string]string{}
	for i := range 400 {
		n.Labels[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	n.GrafanaURL = "https://grafana.example.com/" + strings.Repeat("q", 3000)
	m := decodeSlack(t, n)
	if h := m.Blocks[0].Text.Text; utf8.RuneCountInString(h) != slackHeaderMax || !strings.HasSuffix(h, "…") {
		t.Errorf("header of %d runes", utf8.RuneCountInString(h))
	}
	for _, b := range m.Blocks {
		if b.Text != nil && utf8.RuneCountInString(b.Text.Text) > slackSectionTextMax {
			t.Errorf("%s text of %d runes", b.Type, utf8.RuneCountInString(b.Text.Text))
		}
		if len(b.Fields) > slackFieldsMax {
			t.Errorf("%d fields", len(b.Fields))
		}
		for _, f := range b.Fields {
			if utf8.RuneCountInString(f.Text) > slackFieldMax || !utf8.ValidString(f.Text) {
				t.Errorf("field of %d runes", utf8.RuneCountInString(f.Text))
			}
		}
	}
	if d := m.Blocks[3].Text.Text; !utf8.ValidString(d) || !strings.HasSuffix(d, "…") {
		t.Errorf("description not cut cleanly")
	}
	if n := len(m.Blocks[len(m.Blocks)-1].Elements); n != 2 {
		t.Errorf("%d buttons, want 2 (a URL over 3000 chars is left out, not cut)", n)
	}
}

func TestTruncateMrkdwn(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdefghij", 5, "abcd…"},
		{"ab&amp;cd", 5, "ab…"}, // not "ab&a…"
		{"a&amp;cdefgh", 8, "a&amp;c…"},
		{"日本語テキスト", 4, "日本語…"},
	} {
		if got := truncateMrkdwn(tc.in, tc.max); got != tc.want {
			t.Errorf("truncateMrkdwn(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
