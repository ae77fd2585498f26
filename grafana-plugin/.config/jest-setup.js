/*
 * Jest setup in the layout of @grafana/create-plugin: what jsdom lacks and
 * @grafana/ui needs. ../jest-setup.js imports it; add project setup there.
 */
import '@testing-library/jest-dom';
import { TextDecoder, TextEncoder } from 'util';

// react-dom/server (used by @grafana/ui) needs TextEncoder at import time.
Object.assign(global, { TextDecoder, TextEncoder });

// https://jestjs.io/docs/manual-mocks#mocking-methods-which-are-not-implemented-in-jsdom
Object.defineProperty(global, 'matchMedia', {
  writable: true,
  value: jest.fn().mockImplementation((query) => ({
    matches: false,
    media: query,
    onchange: null,
    addListener: jest.fn(), // deprecated
    removeListener: jest.fn(), // deprecated
    addEventListener: jest.fn(),
    removeEventListener: jest.fn(),
    dispatchEvent: jest.fn(),
  })),
});

class NoopObserver {
  observe() {}
  unobserve() {}
  disconnect() {}
}
global.ResizeObserver = global.ResizeObserver ?? NoopObserver;
global.IntersectionObserver = global.IntersectionObserver ?? NoopObserver;

HTMLCanvasElement.prototype.getContext = () => null;

// i18next (under @grafana/ui) prints an advertisement on every init outside production.
Object.assign(global, { __i18next_supportNoticeShown: true });
