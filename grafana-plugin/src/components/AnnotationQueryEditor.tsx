import React from 'react';
import { QueryEditorProps } from '@grafana/data';
import { HookstreamOptions, HookstreamQuery } from '../types';
import type { DataSource } from '../datasource';
import { AnomaliesEditor } from './QueryEditor';

type Props = QueryEditorProps<DataSource, HookstreamQuery, HookstreamOptions>;

export function AnnotationQueryEditor({ query, onChange, datasource }: Props) {
  const q = { ...query, queryType: 'anomalies' as const, format: 'annotations' };
  return <AnomaliesEditor ds={datasource} q={q} set={(p) => onChange({ ...q, ...p })} />;
}
