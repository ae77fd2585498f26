// Jest setup: the shared part is in .config/jest-setup.js.
import './.config/jest-setup';
