package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"gopkg.in/yaml.v3"
)

// openapi.yaml describes every route, parameter and answer (OpenAPI 3.1).
// It is written by hand, next to the handlers; the tests fail when a route
// is missing from it or it documents one that does not exist, and check
// every answer they receive against it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI is the document as JSON.
var OpenAPI = sync.OnceValues(func() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("api/openapi.yaml: %w", err)
	}
	return json.MarshalIndent(doc, "", "  ")
})

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := OpenAPI()
	if err != nil {
		s.fail(w, r, "build the OpenAPI document", err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(doc)
}
