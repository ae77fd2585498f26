import React, { ChangeEvent } from 'react';
import { InlineField, Input, SecretInput } from '@grafana/ui';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { HookstreamOptions, HookstreamSecureOptions } from '../types';

type Props = DataSourcePluginOptionsEditorProps<HookstreamOptions, HookstreamSecureOptions>;

export function ConfigEditor({ options, onOptionsChange }: Props) {
  const { jsonData, secureJsonFields, secureJsonData } = options;
  return (
    <>
      <InlineField label="URL" labelWidth={14} tooltip="The hookstream API URL (hookstream serve --api-addr)">
        <Input
          id="config-url"
          width={40}
          placeholder="http://127.0.0.1:8081"
          value={jsonData.url ?? ''}
          onChange={(e: ChangeEvent<HTMLInputElement>) =>
            onOptionsChange({ ...options, jsonData: { ...jsonData, url: e.target.value } })
          }
        />
      </InlineField>
      <InlineField
        label="API token"
        labelWidth={14}
        tooltip="The secret of one entry of HOOKSTREAM_API_TOKENS (name:scope:secret); a read-scope token is enough"
      >
        <SecretInput
          id="config-api-token"
          width={40}
          placeholder="secret of a read-scope token of HOOKSTREAM_API_TOKENS"
          isConfigured={Boolean(secureJsonFields?.apiToken)}
          value={secureJsonData?.apiToken ?? ''}
          onChange={(e: ChangeEvent<HTMLInputElement>) =>
            onOptionsChange({ ...options, secureJsonData: { ...secureJsonData, apiToken: e.target.value } })
          }
          onReset={() =>
            onOptionsChange({
              ...options,
              secureJsonFields: { ...secureJsonFields, apiToken: false },
              secureJsonData: { ...secureJsonData, apiToken: '' },
            })
          }
        />
      </InlineField>
    </>
  );
}
