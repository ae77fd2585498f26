import { DataQuery, DataSourceJsonData } from '@grafana/schema';

export type QueryType =
  'metrics' | 'events' | 'funnel' | 'journeys' | 'anomalies' | 'forecast' | 'alerts' | 'status' | 'values';

// INSTANCE_STATUSES are a journey instance's statuses (models.InstanceStatuses).
export const INSTANCE_STATUSES = ['in_progress', 'completed', 'failed', 'abandoned'];

export const LIVE_QUERY_TYPES: QueryType[] = ['metrics', 'events', 'anomalies', 'alerts'];

export interface Filter {
  dimension: string;
  values: string[];
}

export interface HookstreamQuery extends DataQuery {
  queryType?: QueryType;
  live?: boolean;
  // metrics
  metric?: string;
  window?: string;
  groupBy?: string;
  filter?: Filter;
  basis?: string;
  nonEmpty?: boolean;
  offset?: string;
  // events
  topics?: string[];
  customer?: string;
  resource?: string;
  limit?: number;
  format?: string;
  // funnel, journeys
  journey?: string;
  byEntryTopic?: boolean;
  subject?: string;
  status?: string;
  // anomalies, forecast
  series?: string;
  minScore?: number;
  horizon?: string;
  // alerts
  view?: string;
  state?: string;
  expired?: boolean;
  // values
  kind?: string;
  dimension?: string;
}

export const DEFAULTS: Record<QueryType, Partial<HookstreamQuery>> = {
  metrics: { metric: 'count', window: 'auto' },
  events: { limit: 100, format: 'table' },
  funnel: { byEntryTopic: false },
  journeys: { limit: 1000 },
  anomalies: { format: 'scores', limit: 5000 },
  forecast: {},
  alerts: { view: 'alerts', state: 'firing', limit: 100 },
  status: {},
  values: { kind: 'topics', limit: 100 },
};

export const DEFAULT_QUERY: Partial<HookstreamQuery> = { queryType: 'metrics', ...DEFAULTS.metrics };

export interface HookstreamOptions extends DataSourceJsonData {
  url?: string;
}

export interface HookstreamSecureOptions {
  apiToken?: string;
}
