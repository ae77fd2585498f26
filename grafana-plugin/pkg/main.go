// Command gpx_hookstream is the backend of the hookstream Grafana
// datasource; Grafana starts it and talks to it over the plugin protocol.
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/plugin"
)

func main() {
	if err := datasource.Manage(plugin.PluginID, plugin.NewDatasource, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("serve the hookstream datasource", "error", err.Error())
		os.Exit(1)
	}
}
