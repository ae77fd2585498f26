import {
  CoreApp,
  CustomVariableSupport,
  DataFrame,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceInstanceSettings,
  MetricFindValue,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';
import { Observable, map } from 'rxjs';

import { DEFAULT_QUERY, HookstreamOptions, HookstreamQuery } from './types';
import { VariableQueryEditor } from './components/VariableQueryEditor';
import { AnnotationQueryEditor } from './components/AnnotationQueryEditor';

const STRING_FIELDS = [
  'metric',
  'window',
  'groupBy',
  'basis',
  'customer',
  'resource',
  'format',
  'journey',
  'subject',
  'status',
  'series',
  'horizon',
  'view',
  'state',
  'kind',
  'dimension',
  'offset',
] as const;

export function interpolateQuery(q: HookstreamQuery, scopedVars: ScopedVars): HookstreamQuery {
  const srv = getTemplateSrv();
  const out: HookstreamQuery = { ...q };
  for (const k of STRING_FIELDS) {
    const v = out[k];
    if (typeof v === 'string') {
      (out as any)[k] = srv.replace(v, scopedVars);
    }
  }
  const expand = (arr: string[]) =>
    arr.flatMap((s) => {
      const r = srv.replace(s, scopedVars, (value: string | string[]) =>
        Array.isArray(value) ? value.join('\u0000') : value
      );
      return r.split('\u0000').filter((x) => x !== '');
    });
  if (out.topics) {
    out.topics = expand(out.topics);
  }
  if (out.filter) {
    out.filter = {
      dimension: srv.replace(out.filter.dimension ?? '', scopedVars),
      values: expand(out.filter.values ?? []),
    };
  }
  return out;
}

export function frameToMetricFindValues(frames: DataFrame[]): MetricFindValue[] {
  const out: MetricFindValue[] = [];
  for (const f of frames) {
    const text = f.fields.find((x) => x.name === 'text') ?? f.fields[0];
    const value = f.fields.find((x) => x.name === 'value') ?? text;
    if (!text) {
      continue;
    }
    for (let i = 0; i < f.length; i++) {
      out.push({ text: String(text.values[i]), value: value ? value.values[i] : text.values[i] });
    }
  }
  return out;
}

export class HookstreamVariableSupport extends CustomVariableSupport<DataSource, HookstreamQuery> {
  constructor(private readonly ds: DataSource) {
    super();
  }
  editor = VariableQueryEditor;
  query(request: DataQueryRequest<HookstreamQuery>): Observable<DataQueryResponse> {
    const targets = request.targets.map((t) => ({ ...t, queryType: 'values' as const, refId: t.refId || 'variable' }));
    return this.ds.query({ ...request, targets }).pipe(map((r) => ({ ...r, data: frameToMetricFindValues(r.data) })));
  }
}

export class DataSource extends DataSourceWithBackend<HookstreamQuery, HookstreamOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<HookstreamOptions>) {
    super(instanceSettings);
    this.variables = new HookstreamVariableSupport(this);
    this.annotations = {
      QueryEditor: AnnotationQueryEditor,
      getDefaultQuery: () => ({ queryType: 'anomalies', format: 'annotations' }),
      prepareAnnotation: (a) => {
        const t = (a as any).target as HookstreamQuery | undefined;
        (a as any).target = {
          ...(t ?? {}),
          queryType: t?.queryType ?? 'anomalies',
          format: t?.format ?? 'annotations',
          refId: t?.refId ?? 'Anno',
        };
        return a;
      },
    };
  }

  getDefaultQuery(_: CoreApp): Partial<HookstreamQuery> {
    return DEFAULT_QUERY;
  }

  applyTemplateVariables(query: HookstreamQuery, scopedVars: ScopedVars): HookstreamQuery {
    return interpolateQuery(query, scopedVars);
  }

  filterQuery(query: HookstreamQuery): boolean {
    return !query.hide;
  }
}
