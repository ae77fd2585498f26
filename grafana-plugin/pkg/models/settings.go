// Package models holds what Grafana sends the plugin, typed: the datasource
// settings and one query model per query type, each with its validation. It
// reads JSON only; it neither calls hookstream nor builds frames.
package models

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// Settings is one datasource's configuration.
type Settings struct {
	// URL is the hookstream API listener (hookstream serve --api-addr), e.g.
	// http://127.0.0.1:8081. jsonData.url; when empty, the datasource's own
	// URL field.
	URL string `json:"url"`
	// APIToken is the secret part of one of HOOKSTREAM_API_TOKENS'
	// name:scope:secret entries (secureJsonData.apiToken). A read scope is
	// enough for every query.
	APIToken string `json:"-"`
}

// LoadSettings reads s's jsonData and decrypted secrets.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var out Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &out); err != nil {
			return Settings{}, fmt.Errorf("read the datasource's jsonData: %w", err)
		}
	}
	if out.URL == "" {
		out.URL = s.URL
	}
	out.APIToken = s.DecryptedSecureJSONData["apiToken"]
	return out, nil
}
