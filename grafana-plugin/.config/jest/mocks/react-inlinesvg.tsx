// @grafana/ui's Icon fetches public/img/icons/<name>.svg through react-inlinesvg;
// in jest that fetch fails, so render a bare <svg> named after the file instead
// (public/img/icons/unicons/info-circle.svg -> data-testid="info-circle").
// Only src is used: props such as innerRef or loader are not DOM attributes.
import React from 'react';

const SVG_FILE_NAME = /(.+)\/(.+)\.svg$/;

export default function InlineSVG({ src }: { src: string }) {
  return <svg xmlns="http://www.w3.org/2000/svg" data-testid={src.replace(SVG_FILE_NAME, '$2')} viewBox="0 0 24 24" />;
}
