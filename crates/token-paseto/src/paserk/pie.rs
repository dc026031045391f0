//! PASERK `pie` (in progress).
