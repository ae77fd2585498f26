import React from 'react';
type Props = { src: string } & React.SVGProps<SVGSVGElement>;
export default function InlineSVG({ src, ...rest }: Props) {
  return <svg id={src} {...rest} />;
}
