import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import { ConfigEditor } from './ConfigEditor';

const baseOptions = (): any => ({
  jsonData: { url: 'http://127.0.0.1:8081' },
  secureJsonFields: { apiToken: true },
  secureJsonData: {},
});

describe('ConfigEditor', () => {
  it('edits the URL', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={baseOptions()} onOptionsChange={onOptionsChange} />);
    const url = screen.getByPlaceholderText('http://127.0.0.1:8081');
    expect(url).toHaveValue('http://127.0.0.1:8081');
    fireEvent.change(url, { target: { value: 'http://hookstream:8081' } });
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({ jsonData: { url: 'http://hookstream:8081' } })
    );
  });

  it('resets a configured apiToken', () => {
    const onOptionsChange = jest.fn();
    render(<ConfigEditor options={baseOptions()} onOptionsChange={onOptionsChange} />);
    expect(screen.getByText('API token')).toBeInTheDocument();
    fireEvent.click(screen.getByRole('button', { name: /reset/i }));
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({ secureJsonFields: { apiToken: false }, secureJsonData: { apiToken: '' } })
    );
  });
});
