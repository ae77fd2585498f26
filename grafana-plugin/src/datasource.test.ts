import { FieldType, toDataFrame } from '@grafana/data';
import { interpolateQuery, frameToMetricFindValues } from './datasource';

const vars: Record<string, string | string[]> = {
  journey: 'customer_verification',
  topics: ['a', 'b'],
  one: 'x',
  offset: '24h',
};

jest.mock('@grafana/runtime', () => ({
  ...jest.requireActual('@grafana/runtime'),
  getTemplateSrv: () => ({
    replace: (s: string, _sv: unknown, fmt?: (v: string | string[]) => string) =>
      s.replace(/\$(\w+)/g, (_m: string, name: string) => {
        const v = vars[name];
        if (v === undefined) {
          return _m;
        }
        return fmt ? fmt(v) : Array.isArray(v) ? `{${v.join(',')}}` : v;
      }),
  }),
}));

describe('interpolateQuery', () => {
  it('replaces variables in strings and expands multi-values in arrays', () => {
    const q = interpolateQuery(
      {
        refId: 'A',
        queryType: 'events',
        journey: '$journey',
        customer: '$one-1',
        topics: ['$topics', 'c'],
        filter: { dimension: 'topic', values: ['$topics'] },
        offset: '$offset',
      },
      {}
    );
    expect(q.offset).toBe('24h');
    expect(q.journey).toBe('customer_verification');
    expect(q.customer).toBe('x-1');
    expect(q.topics).toEqual(['a', 'b', 'c']);
    expect(q.filter).toEqual({ dimension: 'topic', values: ['a', 'b'] });
  });
});

describe('frameToMetricFindValues', () => {
  it('maps a values frame to MetricFindValue', () => {
    const frame = toDataFrame({
      fields: [
        { name: 'text', type: FieldType.string, values: ['t1', 't2'] },
        { name: 'value', type: FieldType.string, values: ['v1', 'v2'] },
      ],
    });
    expect(frameToMetricFindValues([frame])).toEqual([
      { text: 't1', value: 'v1' },
      { text: 't2', value: 'v2' },
    ]);
  });
});
