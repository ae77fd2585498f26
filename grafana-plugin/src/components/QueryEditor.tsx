import React, { useEffect, useRef, useState } from 'react';
import { InlineField, InlineSwitch, Input, MultiSelect, RadioButtonGroup, Select, Stack } from '@grafana/ui';
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { DataSource } from '../datasource';
import { DEFAULTS, HookstreamOptions, HookstreamQuery, INSTANCE_STATUSES, LIVE_QUERY_TYPES, QueryType } from '../types';

type Props = QueryEditorProps<DataSource, HookstreamQuery, HookstreamOptions>;

const QUERY_TYPES: Array<SelectableValue<QueryType>> = [
  { label: 'Metrics', value: 'metrics' },
  { label: 'Events', value: 'events' },
  { label: 'Funnel', value: 'funnel' },
  { label: 'Journeys', value: 'journeys' },
  { label: 'Anomalies', value: 'anomalies' },
  { label: 'Forecast', value: 'forecast' },
  { label: 'Alerts', value: 'alerts' },
  { label: 'Status', value: 'status' },
];

const opts = (xs: string[]): Array<SelectableValue<string>> => xs.map((x) => ({ label: x, value: x }));

// useResource fetches a backend resource (CallResource) and picks what the
// pickers offer; fallback stands while it loads, on error and without a path.
// Only ds and path decide a fetch: pick and fallback are usually literals,
// new on every render, so they are read through refs.
export function useResource<T>(ds: DataSource, path: string | undefined, pick: (r: any) => T, fallback: T): T {
  const [v, setV] = useState<T>(fallback);
  const pickRef = useRef(pick);
  const fallbackRef = useRef(fallback);
  pickRef.current = pick;
  fallbackRef.current = fallback;
  useEffect(() => {
    if (!path) {
      setV(fallbackRef.current);
      return;
    }
    let current = true;
    ds.getResource(path)
      .then((r: any) => current && setV(pickRef.current(r)))
      .catch(() => current && setV(fallbackRef.current));
    return () => {
      current = false;
    };
  }, [ds, path]);
  return v;
}

interface SubProps {
  ds: DataSource;
  q: HookstreamQuery;
  set: (patch: Partial<HookstreamQuery>) => void;
}

function num(s: string): number | undefined {
  const n = Number(s);
  return s === '' || isNaN(n) ? undefined : n;
}

// LimitField is the limit every listing query type takes.
function LimitField({ q, set }: Pick<SubProps, 'q' | 'set'>) {
  return (
    <InlineField label="Limit">
      <Input
        aria-label="Limit"
        type="number"
        width={10}
        value={q.limit ?? ''}
        onChange={(e) => set({ limit: num(e.currentTarget.value) })}
      />
    </InlineField>
  );
}

export function MetricsEditor({ ds, q, set }: SubProps) {
  const cat = useResource(
    ds,
    'metrics',
    (r) => ({ metrics: (r.metrics ?? []).map((m: any) => m.name), windows: r.windows ?? [] }),
    {
      metrics: [] as string[],
      windows: [] as string[],
    }
  );
  const dims = useResource(ds, 'dimensions', (r) => (r.dimensions ?? []) as string[], []);
  const fdim = q.filter?.dimension;
  const fvals = useResource(
    ds,
    fdim ? `dimensions/${encodeURIComponent(fdim)}/values` : undefined,
    (r) => (r.values ?? []) as string[],
    []
  );
  return (
    <Stack wrap="wrap" gap={0}>
      <InlineField label="Metric">
        <Select
          aria-label="Metric"
          width={20}
          options={opts(cat.metrics)}
          value={q.metric}
          allowCustomValue
          onChange={(v) => set({ metric: v.value })}
        />
      </InlineField>
      <InlineField label="Window">
        <Select
          aria-label="Window"
          width={12}
          options={opts(['auto', ...cat.windows])}
          value={q.window}
          allowCustomValue
          onChange={(v) => set({ window: v.value })}
        />
      </InlineField>
      <InlineField label="Group by">
        <Select
          aria-label="Group by"
          width={18}
          isClearable
          options={opts(dims)}
          value={q.groupBy || null}
          onChange={(v) => set({ groupBy: v?.value ?? '' })}
        />
      </InlineField>
      <InlineField label="Filter">
        <Select
          aria-label="Filter dimension"
          width={18}
          isClearable
          options={opts(dims)}
          value={fdim || null}
          onChange={(v) => set({ filter: v?.value ? { dimension: v.value, values: [] } : undefined })}
        />
      </InlineField>
      <InlineField label="Values">
        <MultiSelect
          aria-label="Filter values"
          width={30}
          options={opts(fvals)}
          allowCustomValue
          value={q.filter?.values ?? []}
          onChange={(vs) => set({ filter: { dimension: fdim ?? '', values: vs.map((v) => v.value as string) } })}
        />
      </InlineField>
      <InlineField
        label="Basis"
        tooltip="The clock windows are cut on: the event's created time, or when hookstream received it"
      >
        <RadioButtonGroup
          options={opts(['event', 'received'])}
          value={q.basis || 'event'}
          onChange={(v) => set({ basis: v })}
        />
      </InlineField>
      <InlineField
        label="Offset"
        tooltip="Read the range this long earlier and draw it at the panel's times (24h, 168h): a second query with an offset compares periods"
      >
        <Input
          aria-label="Offset"
          width={10}
          placeholder="24h"
          value={q.offset ?? ''}
          onChange={(e) => set({ offset: e.currentTarget.value || undefined })}
        />
      </InlineField>
      <InlineField label="Non-empty" tooltip="Leave out windows without events">
        <InlineSwitch
          aria-label="Non-empty"
          value={!!q.nonEmpty}
          onChange={(e) => set({ nonEmpty: e.currentTarget.checked })}
        />
      </InlineField>
    </Stack>
  );
}

export function EventsEditor({ ds, q, set }: SubProps) {
  const topics = useResource(ds, 'topics', (r) => (r.topics ?? []) as string[], []);
  return (
    <Stack wrap="wrap" gap={0}>
      <InlineField label="Topics">
        <MultiSelect
          aria-label="Topics"
          width={40}
          options={opts(topics)}
          allowCustomValue
          value={q.topics ?? []}
          onChange={(vs) => set({ topics: vs.map((v) => v.value as string) })}
        />
      </InlineField>
      <InlineField label="Customer">
        <Input
          aria-label="Customer"
          width={24}
          value={q.customer ?? ''}
          onChange={(e) => set({ customer: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Resource">
        <Input
          aria-label="Resource"
          width={24}
          value={q.resource ?? ''}
          onChange={(e) => set({ resource: e.currentTarget.value })}
        />
      </InlineField>
      <LimitField q={q} set={set} />
      <InlineField label="Format">
        <RadioButtonGroup
          options={opts(['table', 'logs'])}
          value={q.format ?? 'table'}
          onChange={(v) => set({ format: v })}
        />
      </InlineField>
    </Stack>
  );
}

function JourneyPicker({ ds, q, set }: SubProps) {
  const journeys = useResource(ds, 'journeys', (r) => ((r.journeys ?? []) as any[]).map((j) => j.name as string), []);
  return (
    <InlineField label="Journey">
      <Select
        aria-label="Journey"
        width={28}
        options={opts(journeys)}
        allowCustomValue
        value={q.journey || null}
        onChange={(v) => set({ journey: v.value })}
      />
    </InlineField>
  );
}

export function FunnelEditor(p: SubProps) {
  return (
    <Stack wrap="wrap" gap={0}>
      <JourneyPicker {...p} />
      <InlineField label="By entry topic">
        <InlineSwitch
          aria-label="By entry topic"
          value={Boolean(p.q.byEntryTopic)}
          onChange={(e) => p.set({ byEntryTopic: e.currentTarget.checked })}
        />
      </InlineField>
    </Stack>
  );
}

export function JourneysEditor(p: SubProps) {
  const { q, set } = p;
  return (
    <Stack wrap="wrap" gap={0}>
      <JourneyPicker {...p} />
      <InlineField label="Subject">
        <Input
          aria-label="Subject"
          width={24}
          value={q.subject ?? ''}
          onChange={(e) => set({ subject: e.currentTarget.value })}
        />
      </InlineField>
      <InlineField label="Status">
        <Select
          aria-label="Status"
          width={16}
          isClearable
          options={opts(INSTANCE_STATUSES)}
          value={q.status || null}
          onChange={(v) => set({ status: v?.value ?? '' })}
        />
      </InlineField>
      <LimitField q={q} set={set} />
    </Stack>
  );
}

function SeriesPicker({ ds, q, set }: SubProps) {
  const series = useResource(
    ds,
    'series',
    (r) =>
      ((r.series ?? []) as any[]).flatMap((s) => [
        s.name as string,
        ...((s.instances ?? []) as string[]).filter((i) => i !== s.name),
      ]),
    []
  );
  return (
    <InlineField label="Series">
      <Select
        aria-label="Series"
        width={36}
        isClearable
        options={opts(series)}
        allowCustomValue
        value={q.series || null}
        onChange={(v) => set({ series: v?.value ?? '' })}
      />
    </InlineField>
  );
}

export function AnomaliesEditor(p: SubProps) {
  const { q, set } = p;
  return (
    <Stack wrap="wrap" gap={0}>
      <SeriesPicker {...p} />
      <InlineField label="Format">
        <RadioButtonGroup
          options={opts(['scores', 'annotations'])}
          value={q.format ?? 'scores'}
          onChange={(v) => set({ format: v })}
        />
      </InlineField>
      <InlineField label="Min score">
        <Input
          aria-label="Min score"
          type="number"
          step={0.05}
          width={10}
          value={q.minScore ?? ''}
          onChange={(e) => set({ minScore: num(e.currentTarget.value) })}
        />
      </InlineField>
      <LimitField q={q} set={set} />
    </Stack>
  );
}

export function ForecastEditor(p: SubProps) {
  return (
    <Stack wrap="wrap" gap={0}>
      <SeriesPicker {...p} />
      <InlineField label="Horizon" tooltip="A Go duration, e.g. 6h; empty for the panel's range">
        <Input
          aria-label="Horizon"
          width={10}
          value={p.q.horizon ?? ''}
          placeholder="6h"
          onChange={(e) => p.set({ horizon: e.currentTarget.value })}
        />
      </InlineField>
    </Stack>
  );
}

export function AlertsEditor({ q, set }: SubProps) {
  const view = q.view ?? 'alerts';
  return (
    <Stack wrap="wrap" gap={0}>
      <InlineField label="View">
        <RadioButtonGroup
          options={opts(['alerts', 'silences', 'notifications'])}
          value={view}
          onChange={(v) => set({ view: v })}
        />
      </InlineField>
      {view === 'alerts' && (
        <InlineField label="State">
          <RadioButtonGroup
            options={opts(['firing', 'resolved', 'all'])}
            value={q.state ?? 'firing'}
            onChange={(v) => set({ state: v })}
          />
        </InlineField>
      )}
      {view === 'silences' && (
        <InlineField label="Expired">
          <InlineSwitch
            aria-label="Expired"
            value={Boolean(q.expired)}
            onChange={(e) => set({ expired: e.currentTarget.checked })}
          />
        </InlineField>
      )}
      <LimitField q={q} set={set} />
    </Stack>
  );
}

const EDITORS: Partial<Record<QueryType, (p: SubProps) => React.ReactElement>> = {
  metrics: MetricsEditor,
  events: EventsEditor,
  funnel: FunnelEditor,
  journeys: JourneysEditor,
  anomalies: AnomaliesEditor,
  forecast: ForecastEditor,
  alerts: AlertsEditor,
};

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const qt = (query.queryType ?? 'metrics') as QueryType;
  const set = (patch: Partial<HookstreamQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };
  // A new query type starts from its defaults: the previous type's fields
  // (format, limit, topics...) mean something else or nothing to it. Live
  // stays on only if the new type can stream.
  const changeType = (next: QueryType) => {
    const fresh: HookstreamQuery = { refId: query.refId, queryType: next, ...DEFAULTS[next] };
    if (query.datasource !== undefined) {
      fresh.datasource = query.datasource;
    }
    if (query.hide) {
      fresh.hide = true;
    }
    if (query.live && LIVE_QUERY_TYPES.includes(next)) {
      fresh.live = true;
    }
    onChange(fresh);
    onRunQuery();
  };
  const Sub = EDITORS[qt];
  return (
    <Stack direction="column" gap={0}>
      <Stack wrap="wrap" gap={0}>
        <InlineField label="Query type">
          <Select
            aria-label="Query type"
            width={16}
            options={QUERY_TYPES}
            value={qt}
            onChange={(v) => changeType(v.value as QueryType)}
          />
        </InlineField>
        {LIVE_QUERY_TYPES.includes(qt) && (
          <InlineField label="Live" tooltip="Stream new data into the panel over Grafana Live">
            <InlineSwitch
              aria-label="Live"
              value={Boolean(query.live)}
              onChange={(e) => set({ live: e.currentTarget.checked })}
            />
          </InlineField>
        )}
      </Stack>
      {Sub && <Sub ds={datasource} q={query} set={set} />}
    </Stack>
  );
}
