import React from 'react';
import { act, fireEvent, render, screen } from '@testing-library/react';
import { QueryEditor } from './QueryEditor';

const ds: any = {
  getResource: jest.fn(async (path: string) => {
    switch (path) {
      case 'journeys':
        return { journeys: [{ name: 'customer_verification', steps: [] }] };
      case 'series':
        return { series: [{ name: 'volume', instances: ['volume/family=transfer'] }] };
      case 'metrics':
        return { metrics: [{ name: 'count' }], windows: ['1m', '5m'] };
      case 'dimensions':
        return { dimensions: ['topic'] };
      default:
        return {};
    }
  }),
};

async function renderEditor(query: any, onChange = jest.fn(), onRunQuery = jest.fn()) {
  await act(async () => {
    render(
      <QueryEditor datasource={ds} query={{ refId: 'A', ...query }} onChange={onChange} onRunQuery={onRunQuery} />
    );
  });
  return { onChange, onRunQuery };
}

describe('QueryEditor', () => {
  it('shows the metrics editor with a Live toggle', async () => {
    await renderEditor({ queryType: 'metrics' });
    expect(screen.getByText('Group by')).toBeInTheDocument();
    expect(screen.getByText('Live')).toBeInTheDocument();
  });

  it('shows the journeys editor, without Live, and calls onChange on a field change', async () => {
    const { onChange, onRunQuery } = await renderEditor({ queryType: 'journeys', journey: 'customer_verification' });
    expect(screen.getByText('Subject')).toBeInTheDocument();
    expect(screen.queryByText('Live')).not.toBeInTheDocument();
    fireEvent.change(screen.getByLabelText('Subject'), { target: { value: 'cust-1' } });
    expect(onChange).toHaveBeenCalledWith({
      refId: 'A',
      queryType: 'journeys',
      journey: 'customer_verification',
      subject: 'cust-1',
    });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('sets live when the Live switch is turned on', async () => {
    const { onChange, onRunQuery } = await renderEditor({ queryType: 'events' });
    fireEvent.click(screen.getByLabelText('Live'));
    expect(onChange).toHaveBeenCalledWith(expect.objectContaining({ queryType: 'events', live: true }));
    expect(onRunQuery).toHaveBeenCalled();
  });

  it.each(['metrics', 'events', 'anomalies', 'alerts'])('offers Live for %s', async (queryType) => {
    await renderEditor({ queryType });
    expect(screen.getByLabelText('Live')).toBeInTheDocument();
  });

  it.each(['funnel', 'journeys', 'forecast', 'status'])('does not offer Live for %s', async (queryType) => {
    await renderEditor({ queryType });
    expect(screen.queryByLabelText('Live')).not.toBeInTheDocument();
  });

  it('starts a new query type from its defaults, keeping Live only where it streams', async () => {
    const { onChange } = await renderEditor({ queryType: 'events', live: true, topics: ['a'], format: 'logs' });
    const select = screen.getByLabelText('Query type');
    fireEvent.keyDown(select, { key: 'ArrowDown' });
    fireEvent.click(await screen.findByText('Anomalies'));
    expect(onChange).toHaveBeenLastCalledWith({
      refId: 'A',
      queryType: 'anomalies',
      format: 'scores',
      limit: 5000,
      live: true,
    });
    fireEvent.keyDown(select, { key: 'ArrowDown' });
    fireEvent.click(await screen.findByText('Forecast'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'forecast' });
  });

  it('shows the alerts editor', async () => {
    await renderEditor({ queryType: 'alerts' });
    expect(screen.getByText('silences')).toBeInTheDocument();
  });

  it('asks the series resource for anomalies', async () => {
    await renderEditor({ queryType: 'anomalies' });
    expect(ds.getResource).toHaveBeenCalledWith('series');
    expect(screen.getByText('Min score')).toBeInTheDocument();
  });
});
