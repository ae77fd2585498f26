module.exports = {
  endOfLine: 'auto',
  printWidth: 120,
  trailingComma: 'es5',
  semi: true,
  jsxSingleQuote: false,
  singleQuote: true,
  useTabs: false,
  tabWidth: 2,
  // .eslintrc has no extension; prettier would read it as YAML.
  overrides: [{ files: ['.eslintrc'], options: { parser: 'json' } }],
};
