// Package anomaly notices what is abnormal in a series of window values,
// says what it expected instead, and how sure it is.
//
// Detectors are online: a point's score depends only on the points before
// it and itself, so scoring a series point by point, as windows close, and
// scoring it all at once give the same scores. They are pure logic (no
// I/O, no clock); the roles that feed them live series and store what they
// find are elsewhere.
package anomaly
