import { DataSourcePlugin } from '@grafana/data';
import { DataSource } from './datasource';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { HookstreamOptions, HookstreamQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, HookstreamQuery, HookstreamOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
