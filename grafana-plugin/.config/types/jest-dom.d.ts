// Types of the @testing-library/jest-dom matchers (toBeInTheDocument, ...)
// that ../jest-setup.js registers for every test file.
import '@testing-library/jest-dom';
