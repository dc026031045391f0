//! PASERK `seal` (in progress).
