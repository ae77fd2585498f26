import React from 'react';
import { fireEvent, render, screen } from '@testing-library/react';
import { ConfigEditor } from './ConfigEditor';

describe('ConfigEditor', () => {
  it('resets a configured apiToken', () => {
    const onOptionsChange = jest.fn();
    const options: any = { jsonData: { url: 'http://127.0.0.1:8081' }, secureJsonFields: { apiToken: true }, secureJsonData: {} };
    render(<ConfigEditor options={options} onOptionsChange={onOptionsChange} />);
    expect(screen.getByText(/a read-scope token is enough|read-scope token/i, { exact: false })).toBeTruthy;
    fireEvent.click(screen.getByRole('button', { name: /reset/i }));
    expect(onOptionsChange).toHaveBeenCalledWith(
      expect.objectContaining({ secureJsonFields: { apiToken: false }, secureJsonData: { apiToken: '' } })
    );
  });
});
