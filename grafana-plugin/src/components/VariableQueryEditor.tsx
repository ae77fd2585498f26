import React from 'react';
import { InlineField, Input, Select, Stack } from '@grafana/ui';
import { QueryEditorProps } from '@grafana/data';
import { HookstreamOptions, HookstreamQuery, INSTANCE_STATUSES } from '../types';
import type { DataSource } from '../datasource';

type Props = QueryEditorProps<DataSource, HookstreamQuery, HookstreamOptions>;

const KINDS = ['topics', 'journeys', 'steps', 'subjects', 'metrics', 'dimensions', 'dimensionValues', 'series'];
const o = (xs: string[]) => xs.map((x) => ({ label: x, value: x }));

export function VariableQueryEditor({ query, onChange }: Props) {
  const kind = query.kind ?? 'topics';
  const set = (p: Partial<HookstreamQuery>) => onChange({ ...query, queryType: 'values', kind, ...p });
  return (
    <Stack wrap="wrap" gap={0}>
      <InlineField label="Kind">
        <Select aria-label="Kind" width={20} options={o(KINDS)} value={kind} onChange={(v) => set({ kind: v.value })} />
      </InlineField>
      {(kind === 'steps' || kind === 'subjects') && (
        <InlineField label="Journey">
          <Input
            aria-label="Journey"
            width={24}
            value={query.journey ?? ''}
            onChange={(e) => set({ journey: e.currentTarget.value })}
          />
        </InlineField>
      )}
      {kind === 'subjects' && (
        <InlineField label="Status">
          <Select
            aria-label="Status"
            width={16}
            isClearable
            options={o(INSTANCE_STATUSES)}
            value={query.status || null}
            onChange={(v) => set({ status: v?.value ?? '' })}
          />
        </InlineField>
      )}
      {kind === 'dimensionValues' && (
        <InlineField label="Dimension">
          <Input
            aria-label="Dimension"
            width={20}
            value={query.dimension ?? ''}
            onChange={(e) => set({ dimension: e.currentTarget.value })}
          />
        </InlineField>
      )}
    </Stack>
  );
}
