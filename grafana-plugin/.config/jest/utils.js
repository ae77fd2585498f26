/*
 * The helpers of @grafana/create-plugin's .config/jest/utils.js.
 *
 * nodeModulesToTransform builds a transformIgnorePatterns entry that ignores
 * node_modules except the packages named, which jest then transforms.
 */
const nodeModulesToTransform = (moduleNames) => `node_modules\/(?!.*(${moduleNames.join('|')})\/.*)`;

// Packages that @grafana/data, @grafana/ui and @grafana/runtime pull in and
// that ship only ES modules (d3-color 3.1.1 only as dist/*.mjs).
const grafanaESModules = [
  '.pnpm', // pnpm's symlinked packages
  '@grafana/schema',
  '@wojtekmaj/date-utils',
  'ansicolor',
  'd3',
  'd3-color',
  'd3-force',
  'd3-interpolate',
  'd3-scale-chromatic',
  'get-user-locale',
  'i18next',
  'marked',
  'marked-mangle',
  'memoize',
  'micro-memoize',
  'mimic-function',
  'monaco-promql',
  'nanoid',
  'ol',
  'parse-ms',
  'pretty-ms',
  'rc-picker',
  'react-calendar',
  'react-colorful',
  'react-i18next',
  'rxjs',
  'ua-parser-js',
  'uuid',
];

module.exports = {
  nodeModulesToTransform,
  grafanaESModules,
};
